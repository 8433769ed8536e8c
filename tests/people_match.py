"""Matching found people to annotated ones by OKS, for tests on real annotated photos."""
from __future__ import annotations

import numpy as np

from ftpose.evaluation.analysis import keypoint_similarity

# A person with at least this many labelled keypoints must be found, at OKS 0.5: the
# loosest threshold of COCO AP (AP50), where pycocotools counts a person as detected.
WELL_LABELLED = 10
MIN_OKS = 0.5


def best_oks(found_coco17: np.ndarray, people: list[dict]) -> list[float]:
    """For each ground-truth person (COCO annotation), the highest OKS of any found person."""
    best = []
    for person in people:
        gt = np.array(person["keypoints"], float).reshape(17, 3)
        scores = [keypoint_similarity(p[:, :2], gt, person["area"])[gt[:, 2] > 0].mean() for p in found_coco17]
        best.append(max(scores, default=0.0))
    return best
