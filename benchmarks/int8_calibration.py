"""How far int8 (and bf16) maps are from fp32 ones on held-out real photos, per calibration method.

The network is exported once; its int8 version is calibrated on one set of photos with
each method (``minmax``, ``percentile``, ``entropy``) and compared with fp32 ONNX
Runtime on *other* photos, prepared as the predictor prepares them.  ``torch-bf16`` is
compared the same way.  Reported per variant: the largest and mean absolute heatmap and
PAF differences, and the share of fp32 heatmap peaks found again within one cell
(recall) and of peaks that fp32 does not have (extra), at the decoder's threshold.

    python benchmarks/int8_calibration.py --weights run/checkpoint.pt \\
        --calibration ../shared/data/people --photos ../shared/data/coco_mini/train2017 --limit 10
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ftpose.export.backends import OnnxRuntimeBackend, TorchBackend
from ftpose.export.onnx import export_onnx
from ftpose.export.quantize import CALIBRATION_METHODS, calibration_inputs, quantize_int8
from ftpose.grouping import GroupingParams
from ftpose.predictor import PoseMaps
from ftpose.speed import compare_maps, read_frames


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="weights or checkpoint (default: ftnet with random weights)")
    parser.add_argument("--calibration", required=True, help="photo folder to calibrate on")
    parser.add_argument("--photos", required=True, help="held-out photo folder to compare on")
    parser.add_argument("--limit", type=int, default=10, help="photos used from each folder")
    parser.add_argument("--height", type=int, default=368, help="network input height")
    return parser.parse_args()


def main():
    args = parse_args()
    from ftpose.models import create_model, load_model

    torch.manual_seed(0)
    network = load_model(args.weights) if args.weights else create_model("ftnet").eval()
    calibration = [image for image, _ in read_frames(args.calibration, args.limit)]
    photos = [image for image, _ in read_frames(args.photos, args.limit)]
    inputs = calibration_inputs(photos, (args.height,))
    threshold = GroupingParams().peak_threshold
    with tempfile.TemporaryDirectory() as work:
        fp32_path = Path(work) / "fp32.onnx"
        export_onnx(network, fp32_path)
        fp32 = OnnxRuntimeBackend(fp32_path)
        variants = {"torch-bf16": TorchBackend(network, bf16=True)}
        for method in CALIBRATION_METHODS:
            start = time.perf_counter()
            path = quantize_int8(fp32_path, Path(work) / f"{method}.onnx", calibration_inputs(
                calibration, size=(args.height, args.height * 4 // 3 // 8 * 8)), method)
            print(f"calibrated {method} on {len(calibration)} photos in {time.perf_counter() - start:.0f} s",
                  flush=True)
            variants[f"int8 {method}"] = OnnxRuntimeBackend(path)
        print(f"\n{len(photos)} held-out photos at height {args.height}; "
              f"{'weights ' + args.weights if args.weights else 'random weights'}")
        print(f"{'variant':<18} {'heat max':>9} {'heat mean':>10} {'PAF max':>8} {'PAF mean':>9} "
              f"{'peaks':>6} {'recall':>7} {'extra':>6}")
        for name, backend in variants.items():
            rows = []
            for x in inputs:
                batch = torch.from_numpy(x)
                reference = PoseMaps(*(m[0].numpy() for m in fp32(batch)), (8.0, 8.0))
                maps = PoseMaps(*(m[0].numpy() for m in backend(batch)), (8.0, 8.0))
                rows.append(compare_maps(reference, maps, threshold))
            print(f"{name:<18} {max(r['heatmaps_max_diff'] for r in rows):>9.4f} "
                  f"{np.mean([r['heatmaps_mean_diff'] for r in rows]):>10.5f} "
                  f"{max(r['pafs_max_diff'] for r in rows):>8.4f} {np.mean([r['pafs_mean_diff'] for r in rows]):>9.5f} "
                  f"{sum(r['peaks'] for r in rows):>6} {np.mean([r['peak_recall'] for r in rows]):>7.1%} "
                  f"{1 - np.mean([r['peak_precision'] for r in rows]):>6.1%}")


if __name__ == "__main__":
    main()
