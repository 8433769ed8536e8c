"""The common in-memory form of every training set: images with people in the network layout.

Each dataset reader (COCO, MPII, PoseTrack) turns its own files into a list of
:class:`AnnotatedImage` and says which network parts its layout annotates at all
(:func:`annotated_parts`), so the rest of training never looks at a dataset format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ftpose.keypoints import KEYPOINT_SETS, LIMBS, NETWORK, NUM_PARTS, KeypointSet, convert


@dataclass
class AnnotatedImage:
    """One image and its annotated people, keypoints already in the network layout.

    ``keypoints`` is ``(N, 18, 3)`` float32 ``(x, y, v)`` in the image's pixel-centre
    coordinates; ``centers`` ``(N, 2)`` and ``heights`` ``(N,)`` say where each person
    is and how tall (pixels), which the person-centric crop is built around.
    ``ignore`` holds COCO-style annotation dicts (``segmentation`` polygons or RLE,
    ``bbox``, ``iscrowd``, ``num_keypoints``) for regions whose people are not
    annotated; the loss ignores them.
    """

    path: Path
    keypoints: np.ndarray
    centers: np.ndarray
    heights: np.ndarray
    ignore: list[dict] = field(default_factory=list)
    image_id: int | str = 0

    def __post_init__(self):
        self.keypoints = np.asarray(self.keypoints, np.float32).reshape(-1, NUM_PARTS, 3)
        self.centers = np.asarray(self.centers, np.float32).reshape(-1, 2)
        self.heights = np.asarray(self.heights, np.float32).reshape(-1)
        if not len(self.keypoints) == len(self.centers) == len(self.heights):
            raise ValueError(f"{self.path}: keypoints, centers and heights disagree on the number of people")


def annotated_parts(layout: str | KeypointSet) -> np.ndarray:
    """``(18,)`` bool: which network parts a dataset in ``layout`` can ever label.

    Found by converting a fully labelled person, so derived joints (the neck from the
    shoulders) count and the answer always agrees with :func:`ftpose.keypoints.convert`.
    """
    layout = KEYPOINT_SETS[layout] if isinstance(layout, str) else layout
    return convert(np.ones((len(layout), 3)), layout, NETWORK)[:, 2] > 0


def annotated_limbs(parts: np.ndarray) -> np.ndarray:
    """``(19,)`` bool: limbs whose two end parts are both in ``parts``."""
    return np.array([parts[a] and parts[b] for a, b in LIMBS])


def keypoint_extent(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``(N, 2)`` and heights ``(N,)`` of the labelled keypoints of each person.

    For formats without a body box; people with no labelled keypoint get height 0.
    """
    keypoints = np.asarray(keypoints, np.float32)
    centers = np.zeros((len(keypoints), 2), np.float32)
    heights = np.zeros(len(keypoints), np.float32)
    for i, person in enumerate(keypoints):
        xy = person[person[:, 2] > 0, :2]
        if len(xy):
            lo, hi = xy.min(0), xy.max(0)
            centers[i] = (lo + hi) / 2
            heights[i] = hi[1] - lo[1]
    return centers, heights
