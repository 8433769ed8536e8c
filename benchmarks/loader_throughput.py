"""Training data loader throughput: augmented 368x368 samples per second, no network.

Runs the exact loader of ``ftpose train`` (BatchStream + DataLoader in worker
processes: image decode, person-centric warp, target maps, ignore masks) over real
COCO photos and reports samples/s per repeat and their median.  The first batches
(worker start-up) are not timed.

    python benchmarks/loader_throughput.py [--workers 2] [--batches 40] [--repeats 3]
        [--data coco:ANN:IMAGES] [--input-size 368] [--batch-size 8]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from ftpose.data import AugmentConfig, BatchStream, DataSpec, build_dataset
from ftpose.training.engine import build_loader

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT = f"coco:{DATA}/coco_mini/annotations/person_keypoints_train2017.json:{DATA}/coco_mini/train2017"
WARMUP_BATCHES = 4


def measure(dataset, workers: int, batch_size: int, batches: int, seed: int) -> float:
    stream = BatchStream(dataset.sizes, dataset.weights, batch_size, seed=seed)
    loader = iter(build_loader(dataset, stream, workers, seed=seed))
    for _ in range(WARMUP_BATCHES):
        next(loader)
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    elapsed = time.perf_counter() - start
    del loader  # stops the workers
    return batches * batch_size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT, help="KIND:ANNOTATIONS:IMAGES (default: shared coco_mini)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=40, help="timed batches per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--input-size", type=int, default=368)
    args = parser.parse_args()
    spec = DataSpec.parse(args.data)
    if not Path(spec.annotations).exists():
        sys.exit(f"benchmark data not found: {spec.annotations}")
    torch.set_num_threads(1)
    dataset = build_dataset([spec], AugmentConfig(input_size=args.input_size))
    rates = [measure(dataset, args.workers, args.batch_size, args.batches, seed) for seed in range(args.repeats)]
    print(f"{len(dataset)} anchor people; {args.workers} workers, batch {args.batch_size}, "
          f"{args.input_size}x{args.input_size}")
    print("samples/s per repeat:", ", ".join(f"{r:.1f}" for r in rates))
    print(f"median: {statistics.median(rates):.1f} samples/s")


if __name__ == "__main__":
    main()
