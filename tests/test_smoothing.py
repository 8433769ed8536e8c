"""Smoothing tracked keypoints: a real annotated pose, moved and shaken by known amounts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from crossing_clip import ANNOTATIONS

from ftpose.grouping import People
from ftpose.keypoints import COCO17, NETWORK, convert
from ftpose.smoothing import OfflineParams, OneEuroParams, OneEuroSmoother, smooth_offline

FPS = 25.0


def real_pose() -> np.ndarray:
    """``(18, 3)`` keypoints of an annotated person of the sample photo (network layout)."""
    annotation = json.loads(ANNOTATIONS.read_text())["annotations"][1]
    pose = convert(np.array(annotation["keypoints"], float).reshape(17, 3), COCO17, NETWORK)
    pose[:, 2] = np.where(pose[:, 2] > 0, 0.9, 0.0)
    return pose


def track(poses, track_id: int = 7) -> list[People]:
    return [People(p[None].astype(np.float32), np.ones(1, np.float32), np.array([track_id])) if p is not None
            else People.empty() for p in poses]


def walk(frames: int, speed: float = 4.0, shake: float = 0.0) -> list[np.ndarray]:
    """The pose moving right at ``speed`` px per frame, every joint shaken by +-``shake`` px in turn."""
    poses = []
    for t in range(frames):
        pose = real_pose()
        found = pose[:, 2] > 0
        pose[found, 0] += speed * t + shake * (-1) ** t
        pose[found, 1] += shake * (-1) ** (t + 1)
        poses.append(pose)
    return poses


def jitter(frames: list[People]) -> float:
    xy = np.stack([p.keypoints[0, :, :2] for p in frames])
    return float(np.abs(xy[2:] - 2 * xy[1:-1] + xy[:-2]).mean())


def test_one_euro_removes_most_jitter_and_is_causal():
    shaken = track(walk(50, speed=0.0, shake=2.0))
    smoother = OneEuroSmoother()
    smoothed = [smoother.smooth(p, t / FPS) for t, p in enumerate(shaken)]
    assert jitter(smoothed[10:]) < 0.3 * jitter(shaken[10:])
    # causal: the output for frame t is the same whatever comes after it
    again = OneEuroSmoother()
    prefix = [again.smooth(p, t / FPS) for t, p in enumerate(shaken[:20])]
    np.testing.assert_array_equal(prefix[-1].keypoints, smoothed[19].keypoints)


def test_one_euro_follows_motion_closely_when_it_is_fast():
    moving = track(walk(40, speed=12.0))
    smoother = OneEuroSmoother(OneEuroParams())
    smoothed = [smoother.smooth(p, t / FPS) for t, p in enumerate(moving)]
    lag_px = np.abs(smoothed[-1].keypoints[0, :, 0] - moving[-1].keypoints[0, :, 0])[moving[-1].keypoints[0, :, 2] > 0]
    assert lag_px.max() < 12.0       # less than one frame of motion behind


def test_frames_without_people_and_vanishing_joints_do_not_break_it():
    poses = walk(12, shake=1.0)
    poses[4] = None                 # nobody found in frame 4
    poses[6] = poses[6].copy()
    poses[6][3] = 0                 # the right elbow missed in frame 6
    smoother = OneEuroSmoother()
    out = [smoother.smooth(p, t / FPS) for t, p in enumerate(track(poses))]
    assert len(out[4]) == 0
    assert (out[6].keypoints[0, 3] == 0).all()          # a missing joint stays missing
    assert out[7].keypoints[0, 3, 2] > 0
    assert np.isfinite(np.stack([p.keypoints for p in out if len(p)])).all()
    untracked = People(poses[0][None].astype(np.float32), np.ones(1, np.float32))
    assert smoother.smooth(untracked, 1.0) is untracked


def test_offline_fills_short_gaps_exactly_and_adds_no_lag():
    poses = walk(30, speed=5.0)
    given = [p if t not in (10, 11) else None for t, p in enumerate(poses)]
    given[20] = given[20].copy()
    given[20][5] = 0                 # one joint missed
    out = smooth_offline(track(given))
    assert [len(p) for p in out] == [1] * 30
    assert out[10].track_ids.tolist() == [7]
    for t in (10, 11, 20, 0, 29):   # filled frames, a filled joint, the ends: on the true path
        found = poses[t][:, 2] > 0
        np.testing.assert_allclose(out[t].keypoints[0, found, :2], poses[t][found, :2], atol=1e-3)


def test_offline_leaves_long_gaps_and_reduces_jitter():
    poses = walk(40, speed=3.0, shake=2.0)
    given = [p if not 15 <= t < 25 else None for t, p in enumerate(poses)]
    out = smooth_offline(track(given), OfflineParams(max_gap=5))
    assert [len(p) for p in out[15:25]] == [0] * 10
    assert jitter(out[:15]) < 0.5 * jitter(track(given[:15]))
    assert [len(p) for p in smooth_offline([People.empty()] * 3)] == [0, 0, 0]


@pytest.mark.parametrize("frames", [1, 3])
def test_offline_handles_very_short_tracks(frames):
    out = smooth_offline(track(walk(frames)))
    np.testing.assert_allclose(out[-1].keypoints[0], walk(frames)[-1], atol=1e-4)
