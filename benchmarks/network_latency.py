"""Forward latency of ``ftnet`` and ``openpose`` measured in the same run, and their ratio.

The paper (§4.5, Table 5) reports the whole network at 22.71 ms on a Tesla P40 and PAF
(OpenPose) about 2.16x slower.  This script times both networks on this machine at the
same input, interleaving them round by round (alternating which goes first) so that
both see the same machine load, and reports medians.  Weights are random: latency does
not depend on their values.

    python benchmarks/network_latency.py                 # 368x432, fp32, CPU
    python benchmarks/network_latency.py --device cuda   # on a GPU
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from ftpose.models import create_model
from ftpose.models.complexity import summarize
from ftpose.speed import cpu_name

MODELS = ("ftnet", "openpose")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default="368x432", help="HxW input size (default 368x432, the paper's)")
    parser.add_argument("--rounds", type=int, default=10, help="timed forward passes per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed passes per model first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args()


def timed_forward(model, x, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    model(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.input.lower().split("x"))
    device = torch.device(args.device)
    models = {name: create_model(name).eval().to(device) for name in MODELS}
    macs = {name: summarize(model, (height, width))["macs"] for name, model in models.items()}
    x = torch.rand(1, 3, height, width, device=device) - 0.5
    load_before = os.getloadavg()[0]
    times = {name: [] for name in MODELS}
    with torch.no_grad():
        for name in MODELS:
            for _ in range(args.warmup):
                timed_forward(models[name], x, device)
        for i in range(args.rounds):
            for name in (MODELS if i % 2 == 0 else MODELS[::-1]):
                times[name].append(timed_forward(models[name], x, device))
    medians = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "input": [height, width],
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "rounds": args.rounds,
        "median_ms": {name: round(1e3 * m, 2) for name, m in medians.items()},
        "min_ms": {name: round(1e3 * min(t), 2) for name, t in times.items()},
        "gmac_per_s": {name: round(macs[name] / medians[name] / 1e9, 1) for name in MODELS},
        "openpose_over_ftnet": round(medians["openpose"] / medians["ftnet"], 3),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"input {height}x{width}, {result['device']}, torch {result['torch']}, {result['threads']} threads, "
          f"fp32, median of {args.rounds} interleaved rounds; 1-min load average "
          f"{result['load_average'][0]:.2f} before, {result['load_average'][1]:.2f} after")
    for name in MODELS:
        print(f"  {name:<9} {result['median_ms'][name]:>9.2f} ms  (min {result['min_ms'][name]:.2f} ms, "
              f"{macs[name] / 1e9:.1f} GMAC, {result['gmac_per_s'][name]:.0f} GMAC/s)")
    print(f"  openpose / ftnet = {result['openpose_over_ftnet']:.2f}x  (paper, Tesla P40: 2.16x)")


if __name__ == "__main__":
    main()
