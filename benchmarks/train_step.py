"""Time of one training step on this machine: forward, masked L2 on every stage,
backward and optimiser update, at 368x368 with real augmented samples.

Data loading is excluded (the batch is built once); see loader_throughput.py for it.
Prints each step's time and the median of the timed steps (the first ones warm up).

    python benchmarks/train_step.py [--model ftnet] [--batch-size 2] [--steps 6] [--threads 2]
        [--option width_mult=0.25] [--device cpu] [--precision fp32|bf16]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from ftpose.data import AugmentConfig, DataSpec, build_dataset
from ftpose.models import create_model, parse_options
from ftpose.network_input import normalize
from ftpose.training.config import load_config
from ftpose.training.engine import build_optimizer
from ftpose.training.loss import pose_loss

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT = f"coco:{DATA}/coco_mini/annotations/person_keypoints_train2017.json:{DATA}/coco_mini/train2017"
WARMUP_STEPS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ftnet")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="model option")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=368)
    parser.add_argument("--steps", type=int, default=6, help="timed steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="autocast dtype")
    parser.add_argument("--data", default=DEFAULT)
    args = parser.parse_args()
    spec = DataSpec.parse(args.data)
    if not Path(spec.annotations).exists():
        sys.exit(f"benchmark data not found: {spec.annotations}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    dataset = build_dataset([spec], AugmentConfig(input_size=args.input_size))
    items = [dataset[(i, i)] for i in range(args.batch_size)]
    batch = {k: torch.stack([item[k] for item in items]).to(device) for k in items[0]}
    torch.manual_seed(0)
    model = create_model(args.model, **parse_options(args.option)).to(device).train()
    optimizer = build_optimizer(model, load_config())   # the paper's SGD
    times = []
    for _ in range(WARMUP_STEPS + args.steps):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            outputs = model(normalize(batch["image"]))
        loss, _ = pose_loss(outputs, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    timed = times[WARMUP_STEPS:]
    print(f"{args.model} {parse_options(args.option)}, batch {args.batch_size}, "
          f"{args.input_size}x{args.input_size}, {args.threads} threads, {device}, {args.precision}")
    print("step s:", ", ".join(f"{t:.2f}" for t in timed))
    print(f"median: {statistics.median(timed):.2f} s/step")


if __name__ == "__main__":
    main()
