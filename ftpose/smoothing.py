"""Taking the jitter out of tracked keypoints, live (causal) or for recorded video.

**Live**: :class:`OneEuroSmoother`, the One-Euro filter of Casiez, Roussel and Vogel
(CHI 2012) on every joint of every track.  It is a low-pass filter whose cutoff rises
with the joint's speed, so a still joint is smoothed hard (little jitter) and a fast
one lightly (little lag).  Speeds are measured in person heights per second (the
height of the track's keypoint box), so the same settings suit people near and far.

**Recorded video**: :func:`smooth_offline` sees the whole track at once.  It fills
gaps of up to ``max_gap`` frames (a joint, or the whole person, missed by the
detector) by linear interpolation and smooths each joint with a Savitzky-Golay filter
(a moving least-squares quadratic): it is centred, so it adds no lag, and it keeps
steady motion and its curvature exactly, also at the ends of a track.

Both take frames with no people, joints that come and go, and tracks that end.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from ftpose.grouping import People
from ftpose.keypoints import NUM_PARTS


@dataclass(frozen=True)
class OneEuroParams:
    """One-Euro settings.

    ``min_cutoff`` (Hz): the cutoff of a still joint; lower removes more jitter and adds
    more lag.  ``beta`` (per person height per second): how fast the cutoff rises with
    speed; higher follows fast motion more closely.  ``derivative_cutoff`` (Hz): the
    low-pass on the speed estimate itself.  ``reset_after`` (s): a joint unseen for
    longer starts afresh instead of being pulled from where it was.  The defaults were
    chosen on ``opencv-doc__vtest.avi`` with ``benchmarks/smoothing_jitter.py --sweep``
    (README, Video): they remove 39% of the jitter for 0.4 frames of lag; ``beta`` 0.5
    removes 56% for 0.8 frames, 8 removes 21% for 0.2.
    """

    min_cutoff: float = 1.0
    beta: float = 2.0
    derivative_cutoff: float = 1.0
    reset_after: float = 0.5


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray | float) -> np.ndarray:
    """Weight of the new sample in an exponential low-pass at ``cutoff`` Hz after ``dt`` s."""
    return 1.0 / (1.0 + 1.0 / (2 * math.pi * np.asarray(cutoff) * np.maximum(dt, 1e-6)))


@dataclass
class _JointStates:
    position: np.ndarray      # (18, 2) filtered
    speed: np.ndarray         # (18, 2) filtered derivative, pixels per second
    time: np.ndarray          # (18,) last update, seconds; -inf where never seen


class OneEuroSmoother:
    """Causal One-Euro filter per joint per track (see the module docstring).

    Call :meth:`smooth` with each frame's tracked people and the frame's time in
    seconds, in order.  Untracked people (no ``track_ids``) are returned unchanged.
    The states of tracks that have not been seen for ``reset_after`` are dropped, so
    memory stays flat however long the video.
    """

    def __init__(self, params: OneEuroParams | None = None):
        self.params = params or OneEuroParams()
        self._states: dict[int, _JointStates] = {}

    def smooth(self, people: People, time: float) -> People:
        if people.track_ids is None or not len(people):
            self._forget(time)
            return people
        params = self.params
        keypoints = people.keypoints.copy()
        for person, track in enumerate(people.track_ids.tolist()):
            state = self._states.setdefault(
                track, _JointStates(np.zeros((NUM_PARTS, 2)), np.zeros((NUM_PARTS, 2)), np.full(NUM_PARTS, -np.inf)))
            found = keypoints[person, :, 2] > 0
            xy = keypoints[person, :, :2].astype(np.float64)
            dt = time - state.time
            fresh = found & ~(dt <= params.reset_after)      # never seen, or gone too long: start afresh
            update = found & ~fresh & (dt > 0)
            state.position[fresh], state.speed[fresh], state.time[fresh] = xy[fresh], 0.0, time
            if update.any():
                step = dt[update, None]
                raw_speed = (xy[update] - state.position[update]) / step
                speed = state.speed[update] + _alpha(params.derivative_cutoff, step) * (raw_speed - state.speed[update])
                height = _person_height(keypoints[person])
                cutoff = params.min_cutoff + params.beta * np.linalg.norm(speed, axis=1, keepdims=True) / height
                position = state.position[update] + _alpha(cutoff, step) * (xy[update] - state.position[update])
                state.position[update], state.speed[update], state.time[update] = position, speed, time
            keypoints[person, found, :2] = state.position[found]
        self._forget(time)
        return People(keypoints, people.scores, people.track_ids)

    def _forget(self, time: float) -> None:
        stale = [t for t, s in self._states.items() if time - s.time.max() > self.params.reset_after]
        for track in stale:
            del self._states[track]


def _person_height(keypoints: np.ndarray) -> float:
    found = keypoints[:, 2] > 0
    if found.sum() < 2:
        return 1.0
    y = keypoints[found, 1]
    x = keypoints[found, 0]
    return max(float(y.max() - y.min()), float(x.max() - x.min()), 1.0)


@dataclass(frozen=True)
class OfflineParams:
    """``max_gap``: the longest run of missed frames filled in; ``window``: frames in each
    quadratic fit (odd; runs shorter than it are fitted with the longest odd window they
    allow, runs under 5 frames left as they are).  What they do to jitter and lag:
    ``benchmarks/smoothing_jitter.py`` (README, Video)."""

    max_gap: int = 5
    window: int = 9


def smooth_offline(frames: Sequence[People], params: OfflineParams | None = None) -> list[People]:
    """The frames' tracked people with short gaps filled and joints smoothed without lag.

    ``frames`` are consecutive processed frames of one video, each with ``track_ids``
    (untracked frames come back unchanged).  A person filled into a frame it was
    missing from gets interpolated joints and score; a filled joint's confidence is
    interpolated too, so it is never higher than both of its neighbours'.
    """
    params = params or OfflineParams()
    frames = list(frames)
    tracks = sorted({int(t) for p in frames if p.track_ids is not None for t in p.track_ids})
    if not tracks:
        return frames
    column = {t: i for i, t in enumerate(tracks)}
    count = len(frames)
    keypoints = np.zeros((count, len(tracks), NUM_PARTS, 3))
    scores = np.zeros((count, len(tracks)))
    present = np.zeros((count, len(tracks)), bool)
    for f, people in enumerate(frames):
        if people.track_ids is None:
            continue
        for person, track in enumerate(people.track_ids.tolist()):
            keypoints[f, column[track]] = people.keypoints[person]
            scores[f, column[track]] = people.scores[person]
            present[f, column[track]] = True

    for t in range(len(tracks)):
        filled = _fill_gaps(present[:, t], params.max_gap)
        scores[:, t] = np.where(present[:, t], scores[:, t], _fill_values(scores[:, t], present[:, t], filled))
        present[:, t] |= filled
        for k in range(NUM_PARTS):
            found = keypoints[:, t, k, 2] > 0
            gaps = _fill_gaps(found, params.max_gap) & present[:, t]
            series = keypoints[:, t, k].copy()
            for axis in range(3):
                series[:, axis] = np.where(found, series[:, axis], _fill_values(series[:, axis], found, gaps))
            usable = found | gaps
            for start, stop in _runs(usable):
                window = min(params.window, stop - start - (stop - start + 1) % 2)
                if window >= 5:
                    series[start:stop, :2] = savgol_filter(series[start:stop, :2], window, 2, axis=0, mode="interp")
            series[~usable] = 0.0
            keypoints[:, t, k] = series

    out = []
    for f in range(count):
        index = np.flatnonzero(present[f])
        order = index[np.argsort(-scores[f, index], kind="stable")]
        out.append(People(keypoints[f, order].astype(np.float32), scores[f, order].astype(np.float32),
                          np.array([tracks[i] for i in order], np.int64)))
    return out


def _fill_gaps(known: np.ndarray, max_gap: int) -> np.ndarray:
    """Frames inside a run of at most ``max_gap`` unknown frames with known frames on both sides."""
    gaps = np.zeros(len(known), bool)
    for start, stop in _runs(~known):
        if start > 0 and stop < len(known) and stop - start <= max_gap:
            gaps[start:stop] = True
    return gaps


def _fill_values(values: np.ndarray, known: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """``values`` linearly interpolated into ``gaps`` from the known frames (0 elsewhere)."""
    out = np.zeros(len(values))
    if known.sum() >= 2 and gaps.any():
        frames = np.flatnonzero(known)
        out[gaps] = np.interp(np.flatnonzero(gaps), frames, values[frames])
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
