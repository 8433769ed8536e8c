"""Latency of an OpenVINO IR in OpenVINO's own API, outside ftpose: the floor for any
network of its size on this machine.

    python benchmarks/ir_latency.py ../shared/models/human-pose-estimation-0001/FP16-INT8/human-pose-estimation-0001.xml
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xml")
    parser.add_argument("--input", default="368x432", help="HxW")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    import openvino as ov

    height, width = map(int, args.input.split("x"))
    core = ov.Core()
    model = core.read_model(args.xml)
    model.reshape([1, 3, height, width])
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    for _ in range(3):
        request.infer({0: x})
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        request.infer({0: x})
        times.append(1e3 * (time.perf_counter() - start))
    print(f"{args.xml}: {statistics.median(times):.1f} ms median of {args.runs} at {height}x{width}, "
          f"{args.threads} thread(s)")


if __name__ == "__main__":
    main()
