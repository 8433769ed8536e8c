"""Tracking: ids that follow people, on a clip composed from a real photo (tests/crossing_clip.py)."""
from __future__ import annotations

import numpy as np
import pytest

from crossing_clip import crossing_clip, posetrack_predictions, posetrack_sequence

from ftpose.evaluation.analysis import keypoint_similarity
from ftpose.grouping import People
from ftpose.keypoints import COCO17, NETWORK, convert
from ftpose.tracking import Tracker, TrackerParams, box_iou, keypoint_boxes


def annotated_people(keypoints_coco17: np.ndarray) -> People:
    """Ground-truth walkers of one frame as found people (those with labelled joints)."""
    present = (keypoints_coco17[..., 2] > 0).any(1)
    keypoints = convert(keypoints_coco17[present], COCO17, NETWORK).astype(np.float32)
    keypoints[..., 2] = np.where(keypoints[..., 2] > 0, 0.9, 0.0)
    return People(keypoints, np.full(len(keypoints), 0.8, np.float32))


def walker_ids(clip, frames_people) -> list[dict[int, int]]:
    """For each frame, walker -> track id of the found person matching it at OKS 0.5 or more."""
    out = []
    for truth, people in zip(clip.keypoints, frames_people):
        found = people.to_coco17()
        ids = {}
        for walker in (0, 1):
            if not (truth[walker, :, 2] > 0).any() or not len(found):
                continue
            terms = keypoint_similarity(found[..., :2], truth[walker], clip.areas[walker])
            oks = np.where(terms >= 0, terms, 0).sum(1) / (terms >= 0).sum(1)
            if oks.max() >= 0.5:
                ids[walker] = int(people.track_ids[oks.argmax()])
        out.append(ids)
    return out


def test_ids_stay_fixed_for_real_people_crossing_paths():
    """The network's own detections: the walkers meet, the back one is hidden while they
    overlap, and each keeps its id from the first frame to the last."""
    import torch

    from ftpose.predictor import Predictor

    torch.set_num_threads(1)
    clip = crossing_clip(frames=10)
    people = list(Predictor("ftnet-light", batch_size=2).track(clip.frames))
    ids = walker_ids(clip, people)
    seen = {walker: {frame[walker] for frame in ids if walker in frame} for walker in (0, 1)}
    # the back walker is found before and after the crossing, the front one throughout
    assert sum(0 in frame for frame in ids[:3]) == 3 and sum(0 in frame for frame in ids[-3:]) == 3
    assert all(1 in frame for frame in ids)
    assert len(seen[0]) == 1 and len(seen[1]) == 1 and seen[0] != seen[1]


def test_a_track_survives_two_missed_frames_and_ids_are_never_reused():
    clip = crossing_clip(frames=12, missing=(5, 6))
    frames = [annotated_people(truth) for truth in clip.keypoints]
    assert [len(p) for p in frames][4:8] == [2, 1, 1, 2]
    tracked = list(Tracker().track(frames))
    ids = walker_ids(clip, tracked)
    assert {frame[0] for frame in ids if 0 in frame} == {ids[0][0]}
    assert {frame[1] for frame in ids} == {ids[0][1]}
    # a tracker that forgets after one missed frame gives the returning walker a new id, never an old one
    forgetful = list(Tracker(TrackerParams(max_missed=1)).track(frames))
    after = walker_ids(clip, forgetful)
    assert after[7][0] not in (after[0][0], after[0][1])
    assert after[7][1] == after[0][1]


def test_new_people_get_new_ids_and_empty_frames_are_fine():
    clip = crossing_clip(frames=12)
    one = annotated_people(clip.keypoints[0][:1])
    tracker = Tracker()
    assert tracker.update(People.empty()).track_ids.tolist() == []
    first = tracker.update(one).track_ids.tolist()
    both = tracker.update(annotated_people(clip.keypoints[1])).track_ids.tolist()
    assert len(first) == 1 and len(both) == 2 and first[0] in both and len(set(both)) == 2


def test_box_iou_and_keypoint_boxes():
    keypoints = np.zeros((2, 18, 3))
    keypoints[0, :2] = [[0, 0, 1], [10, 10, 1]]
    keypoints[1, :2] = [[5, 5, 1], [15, 15, 1]]
    boxes = keypoint_boxes(keypoints)
    assert boxes.tolist() == [[0, 0, 10, 10], [5, 5, 15, 15]]
    assert box_iou(boxes, boxes)[0, 1] == pytest.approx(25 / 175)
    assert keypoint_boxes(np.zeros((1, 18, 3))).tolist() == [[0, 0, 0, 0]]


def test_posetrack_scoring_counts_the_switches_tracking_avoids():
    """On the crossing walkers' own poses, tracked ids score MOTA 1 with no identity switch;
    a new id in every frame switches every joint of both walkers in every frame."""
    from ftpose.evaluation.posetrack import evaluate_posetrack

    clip = crossing_clip(frames=12, missing=(5, 6))
    frames = [annotated_people(truth) for truth in clip.keypoints]
    sequences = [posetrack_sequence(clip, "walk")]
    tracked = evaluate_posetrack(sequences, posetrack_predictions(list(Tracker().track(frames)), "walk"), COCO17)
    assert tracked["switches"] == 0 and tracked["MOTA"] == pytest.approx(1.0)
    fresh, next_id = [], 0
    for people in frames:
        fresh.append(People(people.keypoints, people.scores, np.arange(next_id, next_id + len(people))))
        next_id += len(people)
    untracked = evaluate_posetrack(sequences, posetrack_predictions(fresh, "walk"), COCO17)
    assert untracked["switches"] > 100 and untracked["MOTA"] < 0.2
