"""Following people from frame to frame: stable track ids for bottom-up poses.

Each frame's people are matched to the live tracks by an optimal assignment (scipy's
Hungarian solver) on a similarity that mixes two cues:

- **keypoint similarity**: COCO's OKS between the person and the track's pose moved
  by the track's constant-velocity prediction (the per-frame median shift of its
  joints, smoothed), with the track's keypoint box as the scale, averaged over the
  joints both have.  It tells apart people whose boxes overlap (two people crossing);
- **box overlap**: IoU of the keypoint boxes (the predicted one for the track), which
  still matches when the two have few joints in common.

A pair below ``min_similarity`` is not matched by this first round.  A second round
pairs what is left by the distance between box centres (the track's predicted one),
as a fraction of the larger box's diagonal, up to ``max_centre_distance``: a person
who moves far in one frame while their track has no velocity yet (just born, or fast)
is still followed.  Unmatched people start new tracks; a track that finds no one
survives ``max_missed`` frames (moving on its prediction) and is then dropped.  Ids come from a counter and are never reused, so an id names
one person for the whole video.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ftpose.grouping import People
from ftpose.keypoints import COCO17, NETWORK, convert


@dataclass(frozen=True)
class TrackerParams:
    """How the tracker matches.

    ``oks_weight`` balances keypoint similarity against box IoU (both 0..1);
    ``velocity_smoothing`` is the weight of the newest shift in the velocity estimate.
    The defaults were chosen with ``benchmarks/tracking_quality.py`` (README, Video):
    on its crossing clips they give 4 joint identity switches; ``max_missed`` 3 gives 11
    (the hidden walker's track ends before it reappears), and without the centre round
    (``max_centre_distance`` 0) 9 at ``min_similarity`` 0.15 and 88 at 0.3.
    """

    max_missed: int = 10
    min_similarity: float = 0.15
    max_centre_distance: float = 0.5
    oks_weight: float = 0.5
    velocity_smoothing: float = 0.5


@dataclass
class _Track:
    track_id: int
    keypoints: np.ndarray         # (18, 3) of the last match
    frame: float                  # frame index of the last match
    velocity: np.ndarray          # (2,) pixels per frame
    missed: int = 0
    hits: int = 1

    def predicted(self, frame: float) -> np.ndarray:
        """The pose moved on by constant velocity to ``frame``; missing joints stay zero."""
        moved = self.keypoints.copy()
        found = moved[:, 2] > 0
        moved[found, :2] += self.velocity * (frame - self.frame)
        return moved


class Tracker:
    """Gives the people of successive frames track ids (see the module docstring).

    Feed the frames in order with :meth:`update`; a new video needs a new tracker.
    """

    def __init__(self, params: TrackerParams | None = None):
        self.params = params or TrackerParams()
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frame = -1.0

    @property
    def live_tracks(self) -> int:
        """Tracks that may still be matched (including those missing for a few frames)."""
        return len(self._tracks)

    def update(self, people: People, frame: float | None = None) -> People:
        """``people`` with ``track_ids`` set; ``frame`` is the frame index (default: the
        previous one + 1), so that motion is predicted correctly with a frame step."""
        frame = self._frame + 1 if frame is None else float(frame)
        self._frame = frame
        params = self.params
        predicted = np.stack([t.predicted(frame) for t in self._tracks]) if self._tracks else np.zeros((0, 18, 3))
        similarity = pose_similarity(people.keypoints, predicted, params.oks_weight)
        rows, cols = _assign(-similarity, -params.min_similarity)
        free_people = np.setdiff1d(np.arange(len(people)), rows)
        free_tracks = np.setdiff1d(np.arange(len(self._tracks)), cols)
        distance = centre_distance(people.keypoints[free_people], predicted[free_tracks])
        more_rows, more_cols = _assign(distance, params.max_centre_distance)
        rows = np.concatenate([rows, free_people[more_rows]]).astype(int)
        cols = np.concatenate([cols, free_tracks[more_cols]]).astype(int)

        ids = np.full(len(people), -1, np.int64)
        for person, index in zip(rows, cols):
            track = self._tracks[index]
            shift = _median_shift(track.keypoints, people.keypoints[person])
            if shift is not None:
                measured = shift / max(frame - track.frame, 1e-6)
                # the first shift is the first velocity; later ones are averaged in
                weight = 1.0 if track.hits == 1 else params.velocity_smoothing
                track.velocity = (1 - weight) * track.velocity + weight * measured
            track.keypoints, track.frame, track.missed = people.keypoints[person].copy(), frame, 0
            track.hits += 1
            ids[person] = track.track_id
        matched_tracks = set(cols.tolist())
        for index, track in enumerate(self._tracks):
            if index not in matched_tracks:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= params.max_missed]
        for person in np.flatnonzero(ids < 0):
            ids[person] = self._next_id
            self._tracks.append(_Track(self._next_id, people.keypoints[person].copy(), frame, np.zeros(2)))
            self._next_id += 1
        return People(people.keypoints, people.scores, ids)

    def track(self, frames: Iterable[People]) -> Iterator[People]:
        """:meth:`update` on each frame's people in turn."""
        for people in frames:
            yield self.update(people)


def keypoint_boxes(keypoints: np.ndarray) -> np.ndarray:
    """``(P, 4)`` boxes ``x0, y0, x1, y1`` around each person's found joints (zeros if none)."""
    keypoints = np.asarray(keypoints, np.float64)
    found = keypoints[..., 2] > 0
    low = np.where(found[..., None], keypoints[..., :2], np.inf).min(-2)
    high = np.where(found[..., None], keypoints[..., :2], -np.inf).max(-2)
    boxes = np.concatenate([low, high], -1)
    return np.where(found.any(-1)[..., None], boxes, 0.0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` IoU of ``x0, y0, x1, y1`` boxes."""
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = lambda box: (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])  # noqa: E731
    union = area(a) + area(b) - w * h
    return np.where(union > 0, w * h / np.where(union > 0, union, 1), 0.0)


def object_keypoint_similarity(people: np.ndarray, references: np.ndarray) -> np.ndarray:
    """``(P, R)`` OKS of network-layout people against references, each reference's
    keypoint box area as its scale, averaged over the joints both have (0 if none).

    The per-joint term is pycocotools' (``ftpose.evaluation.analysis.keypoint_similarity``),
    on the 17 COCO joints (the neck, which COCO lacks, is left out)."""
    from ftpose.evaluation.analysis import keypoint_similarity

    people = convert(np.asarray(people, np.float64), NETWORK, COCO17)
    references = convert(np.asarray(references, np.float64), NETWORK, COCO17)
    out = np.zeros((len(people), len(references)))
    if not len(people) or not len(references):
        return out
    boxes = keypoint_boxes(references)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    found = people[..., 2] > 0
    for r, (reference, area) in enumerate(zip(references, areas)):
        terms = keypoint_similarity(people[..., :2], reference, max(area, 1.0))   # (P, 17), -1 unlabelled
        both = found & (terms >= 0)
        counts = both.sum(1)
        out[:, r] = np.where(counts > 0, np.where(both, terms, 0).sum(1) / np.maximum(counts, 1), 0.0)
    return out


def centre_distance(people: np.ndarray, references: np.ndarray) -> np.ndarray:
    """``(P, R)`` distance between keypoint-box centres over the larger box's diagonal."""
    a, b = keypoint_boxes(people), keypoint_boxes(references)
    centres = np.linalg.norm((a[:, None, :2] + a[:, None, 2:]) / 2 - (b[None, :, :2] + b[None, :, 2:]) / 2, axis=-1)
    diagonal = np.maximum(np.linalg.norm(a[:, 2:] - a[:, :2], axis=1)[:, None],
                          np.linalg.norm(b[:, 2:] - b[:, :2], axis=1)[None])
    return centres / np.maximum(diagonal, 1.0)


def _assign(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost pairs (rows, columns) of ``cost``, those above ``max_cost`` dropped."""
    if not cost.size:
        return np.zeros(0, int), np.zeros(0, int)
    rows, cols = linear_sum_assignment(cost)
    keep = cost[rows, cols] <= max_cost
    return rows[keep], cols[keep]


def pose_similarity(people: np.ndarray, references: np.ndarray, oks_weight: float = 0.5) -> np.ndarray:
    """``(P, R)`` tracking similarity: ``oks_weight`` x OKS + the rest x keypoint-box IoU."""
    oks = object_keypoint_similarity(people, references)
    iou = box_iou(keypoint_boxes(people), keypoint_boxes(references)) if oks.size else oks
    return oks_weight * oks + (1 - oks_weight) * iou


def _median_shift(before: np.ndarray, after: np.ndarray) -> np.ndarray | None:
    """Median displacement of the joints found in both poses, None if they share none."""
    both = (before[:, 2] > 0) & (after[:, 2] > 0)
    if not both.any():
        return None
    return np.median(after[both, :2] - before[both, :2], axis=0)
