"""CLEAR MOT tracking metrics (Bernardin and Stiefelhagen, 2008) for one object class.

PoseTrack scores tracking per joint type: each annotated joint is an object carrying its
person's track id, each predicted joint a hypothesis carrying its predicted track id,
and a pair may be matched only when the joint lies within the PCKh threshold.

Per frame: correspondences from earlier frames are kept while still allowed; the
remaining objects and hypotheses are paired by a minimum-cost assignment that first
maximises the number of pairs; an object paired with a different hypothesis than its
last one is an identity switch.  This is the algorithm of py-motmetrics, which poseval
uses, so the counts agree with it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass
class MotCounts:
    """Event counts over frames; ``distance_sum`` adds the distances of matched pairs."""

    objects: int = 0
    matches: int = 0
    misses: int = 0
    false_positives: int = 0
    switches: int = 0
    distance_sum: float = 0.0

    def __iadd__(self, other: MotCounts) -> MotCounts:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    @property
    def mota(self) -> float:
        """1 - (misses + switches + false positives) / objects; NaN without objects."""
        if self.objects == 0:
            return float("nan")
        return 1.0 - (self.misses + self.switches + self.false_positives) / self.objects

    @property
    def motp(self) -> float:
        """1 - mean distance of matched pairs (distances are in units of the match threshold's scale)."""
        return 1.0 - self.distance_sum / self.matches if self.matches else 0.0

    @property
    def precision(self) -> float:
        detections = self.matches + self.false_positives
        return self.matches / detections if detections else float("nan")

    @property
    def recall(self) -> float:
        return self.matches / self.objects if self.objects else float("nan")


@dataclass
class MotAccumulator:
    """Feeds the frames of one sequence, one call per frame, in order."""

    counts: MotCounts = field(default_factory=MotCounts)
    _partner: dict = field(default_factory=dict)  # object id -> hypothesis id of its last match

    def update(self, objects, hypotheses, distance: np.ndarray) -> None:
        """``distance[i, j]`` between object ``i`` and hypothesis ``j``; NaN forbids the pair."""
        objects, hypotheses = list(objects), list(hypotheses)
        distance = np.array(distance, np.float64).reshape(len(objects), len(hypotheses))
        counts = self.counts
        counts.objects += len(objects)
        free_objects = np.ones(len(objects), bool)
        free_hypotheses = np.ones(len(hypotheses), bool)

        for i, obj in enumerate(objects):  # keep earlier correspondences that still hold
            if obj not in self._partner:
                continue
            candidates = [j for j, h in enumerate(hypotheses) if free_hypotheses[j] and h == self._partner[obj]]
            if candidates and np.isfinite(distance[i, candidates[0]]):
                j = candidates[0]
                free_objects[i] = free_hypotheses[j] = False
                counts.matches += 1
                counts.distance_sum += distance[i, j]

        cost = np.where(free_objects[:, None] & free_hypotheses[None], distance, np.nan)
        for i, j in zip(*_max_cardinality_assignment(cost)):
            obj, hyp = objects[i], hypotheses[j]
            if obj in self._partner and self._partner[obj] != hyp:
                counts.switches += 1
            self._partner[obj] = hyp
            free_objects[i] = free_hypotheses[j] = False
            counts.matches += 1
            counts.distance_sum += distance[i, j]

        counts.misses += int(free_objects.sum())
        counts.false_positives += int(free_hypotheses.sum())


def _max_cardinality_assignment(cost: np.ndarray):
    """Pairs of a minimum-cost assignment among the finite entries with the most pairs."""
    valid = np.isfinite(cost)
    if not valid.any():
        return np.zeros(0, int), np.zeros(0, int)
    # A forbidden pair costs more than any set of allowed ones, so it is only chosen
    # when nothing else is possible, and is then dropped.
    big = 2 * min(cost.shape) * (np.abs(cost[valid]).max() + 1) + 1
    rows, cols = linear_sum_assignment(np.where(valid, cost, big))
    keep = valid[rows, cols]
    return rows[keep], cols[keep]
