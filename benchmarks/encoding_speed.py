"""How long the training targets take for a 368x368 sample with 10 people.

The people are real: the 10 most completely annotated people of COCO image 370162
(the most crowded image in ``../shared/data/coco_mini``), the image scaled to fit a
368x368 training sample and centred in it.  Timed: ``ftpose.targets.encode``
(19 heatmaps + 38 PAFs at stride 8) and ``downsample_mask`` of a full-resolution
ignore mask, the per-sample work of the training data pipeline.

    python benchmarks/encoding_speed.py [--repeat 1000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ftpose.data.coco import load_coco_annotations
from ftpose.keypoints import COCO17, NETWORK, convert
from ftpose.targets import downsample_mask, encode, ignore_mask

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ANNOTATIONS = DATA / "coco_mini" / "annotations" / "person_keypoints_train2017.json"
IMAGE_ID, NUM_PEOPLE, SIZE = 370162, 10, 368


def sample():
    """Keypoints ``(10, 18, 3)`` and the ignore mask of the benchmark's 368x368 sample."""
    if not ANNOTATIONS.is_file():
        sys.exit(f"benchmark data not found: {ANNOTATIONS} (the shared real-data folder)")
    coco = load_coco_annotations(ANNOTATIONS)
    image = coco.imgs[IMAGE_ID]
    anns = coco.imgToAnns[IMAGE_ID]
    people = sorted((a for a in anns if a["num_keypoints"] > 0 and not a["iscrowd"]),
                    key=lambda a: -a["num_keypoints"])[:NUM_PEOPLE]
    keypoints = convert(np.array([a["keypoints"] for a in people], float).reshape(-1, 17, 3), COCO17, NETWORK)
    ratio = SIZE / max(image["height"], image["width"])
    offset = (SIZE - np.array([image["width"], image["height"]]) * ratio) / 2
    keypoints[..., :2] = (keypoints[..., :2] + 0.5) * ratio - 0.5 + offset
    mask = np.zeros((SIZE, SIZE), bool)   # the image's ignore mask, nearest-neighbour resized into the sample
    full = ignore_mask(anns, image["height"], image["width"])
    rows = ((np.arange(SIZE) - offset[1] + 0.5) / ratio - 0.5).round().astype(int)
    cols = ((np.arange(SIZE) - offset[0] + 0.5) / ratio - 0.5).round().astype(int)
    inside_rows = (rows >= 0) & (rows < image["height"])
    inside_cols = (cols >= 0) & (cols < image["width"])
    mask[np.ix_(inside_rows, inside_cols)] = full[np.ix_(rows[inside_rows], cols[inside_cols])]
    return keypoints, mask


def median_ms(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1000, help="timed runs of each step")
    args = parser.parse_args()
    keypoints, mask = sample()
    labelled = int((keypoints[..., 2] > 0).sum())
    print(f"sample: {SIZE}x{SIZE}, {len(keypoints)} people, {labelled} labelled joints "
          f"(COCO image {IMAGE_ID}); {mask.mean():.1%} of the pixels ignored")
    print(f"encode (heatmaps + PAFs)     {median_ms(lambda: encode(keypoints, SIZE, SIZE), args.repeat):7.3f} ms median")
    print(f"downsample_mask (stride 8)   {median_ms(lambda: downsample_mask(mask, 8), args.repeat):7.3f} ms median")


if __name__ == "__main__":
    main()
