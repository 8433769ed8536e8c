"""PoseTrack protocol: per-part AP with ignore regions, CLEAR MOT, both file formats."""
from __future__ import annotations

import copy
import json

import cv2
import numpy as np
import pytest

from ftpose.evaluation import posetrack as pt
from ftpose.evaluation.clear_mot import MotAccumulator
from ftpose.evaluation.pckh import collect_detections
from ftpose.files import InputError
from ftpose.keypoints import POSETRACK17, POSETRACK18


@pytest.fixture(scope="module")
def val_dir(shared_data):
    return shared_data / "mmpose_fixtures/posetrack18/annotations/val"


@pytest.fixture(scope="module")
def sequences(val_dir):
    return pt.load_ground_truth(val_dir)


def perfect(sequences, seed=0) -> dict:
    """The annotated people as PoseTrack-17-layout predictions, with their track ids."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in sequences:
        for f in s.frames:
            scores = np.repeat(rng.uniform(0.5, 1, (len(f.keypoints), 1)), 15, 1)
            out[f.image_id] = pt.PredictedPeople(f.keypoints.copy(), scores, f.track_ids.copy())
    return out


def evaluate(sequences, predictions):
    return pt.evaluate_posetrack(sequences, predictions, POSETRACK17)


def test_perfect_predictions_score_one(sequences):
    metrics = evaluate(sequences, perfect(sequences))
    for name in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "mAP", "MOTA", "MOTP",
                 "precision", "recall"):
        assert metrics[name] == pytest.approx(1.0), name


def test_predictions_without_track_ids_get_no_tracking_metrics(sequences):
    untracked = {k: pt.PredictedPeople(p.keypoints, p.scores) for k, p in perfect(sequences).items()}
    metrics = evaluate(sequences, untracked)
    assert metrics["mAP"] == pytest.approx(1.0) and "MOTA" not in metrics


def _ignored_joint(sequences):
    """(frame, person, joint) of the one annotated joint that lies inside an ignore region."""
    for s in sequences:
        for f in s.frames:
            if not f.ignore_regions:
                continue
            inside = ~pt._outside(f.keypoints[..., :2], f.ignore_regions) & (f.keypoints[..., 2] > 0)
            for g, j in zip(*np.nonzero(inside)):
                return f, g, j
    pytest.fail("the fixture was expected to have an annotated joint inside an ignore region")


def test_joints_in_ignore_regions_are_neither_positives_nor_detections(sequences):
    frame, person, joint = _ignored_joint(sequences)
    predictions = perfect(sequences)
    labelled = sum(int((f.keypoints[..., 2] > 0).sum()) for s in sequences for f in s.frames)
    frames = pt.make_frames(sequences, predictions, POSETRACK17)
    assert sum(j.positives for j in collect_detections(frames)) == labelled - 1

    # missing the ignored joint costs nothing ...
    people = predictions[frame.image_id]
    people.keypoints[person, joint] = 0
    assert evaluate(sequences, predictions)["mAP"] == pytest.approx(1.0)
    # ... but it does once the ignore regions are gone
    no_regions = copy.deepcopy(sequences)
    for s in no_regions:
        for f in s.frames:
            f.ignore_regions = []
    assert evaluate(no_regions, predictions)["mAP"] < 1.0


def test_false_person_inside_an_ignore_region_costs_nothing(sequences):
    frame = next(f for s in sequences for f in s.frames if f.ignore_regions)
    polygon = max(frame.ignore_regions, key=cv2.contourArea)
    xs, ys = np.meshgrid(np.linspace(*np.percentile(polygon[:, 0], [5, 95]), 40),
                         np.linspace(*np.percentile(polygon[:, 1], [5, 95]), 40))
    inside = [(x, y) for x, y in zip(xs.ravel(), ys.ravel())
              if cv2.pointPolygonTest(polygon, (float(x), float(y)), False) > 0][:15]
    assert len(inside) == 15
    ghost = np.concatenate([np.array(inside), np.ones((15, 1))], 1)[None]
    predictions = perfect(sequences)
    people = predictions[frame.image_id]
    predictions[frame.image_id] = pt.PredictedPeople(np.concatenate([people.keypoints, ghost]),
                                                     np.concatenate([people.scores, np.full((1, 15), 2.0)]),
                                                     np.append(people.track_ids, 99))
    metrics = evaluate(sequences, predictions)
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["MOTA"] == pytest.approx(1.0)


def _changed(predictions, change):
    return {k: change(i, copy.deepcopy(p)) for i, (k, p) in enumerate(predictions.items())}


def test_corruptions_lower_ap_monotonically(sequences):
    base = perfect(sequences)

    def shift(k):
        def change(_, p):
            p.keypoints[p.keypoints[..., 2] > 0, 1] += k
            return p
        return change

    maps = [evaluate(sequences, _changed(base, shift(k)))["mAP"] for k in (0, 10, 20, 40, 80)]
    assert all(a > b for a, b in zip(maps, maps[1:])), maps

    def mirror(_, p):
        p.keypoints[::2] = p.keypoints[::2][:, POSETRACK17.flip_permutation]
        return p

    assert evaluate(sequences, _changed(base, mirror))["mAP"] < 1.0

    def drop(n):
        def change(_, p):
            keep = np.arange(len(p.keypoints)) % 4 >= n
            return pt.PredictedPeople(p.keypoints[keep], p.scores[keep], p.track_ids[keep])
        return change

    dropped = [evaluate(sequences, _changed(base, drop(n))) for n in range(4)]
    for name in ("mAP", "MOTA", "recall"):
        values = [m[name] for m in dropped]
        assert all(a > b for a, b in zip(values, values[1:])), (name, values)

    def duplicate(_, p):
        return pt.PredictedPeople(np.concatenate([p.keypoints, p.keypoints]),
                                  np.concatenate([p.scores, 0.9 * p.scores]),
                                  np.concatenate([p.track_ids, p.track_ids + 500]))

    doubled = evaluate(sequences, _changed(base, duplicate))
    assert doubled["mAP"] < 1.0 and doubled["precision"] == pytest.approx(0.5)
    assert doubled["MOTA"] == pytest.approx(0.0) and doubled["recall"] == pytest.approx(1.0)


def _video(sequences, frames=3) -> list[pt.Sequence]:
    """The 11-person real frame repeated as a short video (same people, same tracks)."""
    frame = max((f for s in sequences for f in s.frames), key=lambda f: len(f.keypoints))
    video = []
    for t in range(frames):
        f = copy.deepcopy(frame)
        f.image, f.image_id = f"frame{t}.jpg", t
        video.append(f)
    return [pt.Sequence("video", video)]


def test_identity_switch_is_counted_once_per_joint(sequences):
    video = _video(sequences)
    frame = video[0].frames[0]
    predictions = perfect(video)
    assert evaluate(video, predictions)["MOTA"] == pytest.approx(1.0)
    # from frame 1 on, the predictions of people 0 and 1 exchange track ids
    for t in (1, 2):
        predictions[t].track_ids[[0, 1]] = predictions[t].track_ids[[1, 0]]
    metrics = evaluate(video, predictions)
    labelled = frame.keypoints[..., 2] > 0
    expected = [1 - labelled[:2, j].sum() / (3 * labelled[:, j].sum()) for j in range(15) if labelled[:, j].any()]
    assert metrics["MOTA"] == pytest.approx(np.mean(expected))
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["precision"] == pytest.approx(1.0)


def test_accumulator_keeps_correspondences_then_minimises_distance():
    acc = MotAccumulator()
    acc.update([1, 2], [10, 20], np.array([[0.1, np.nan], [0.2, 0.3]]))   # 1-10, 2-20
    acc.update([1, 2], [10, 20], np.array([[0.4, 0.1], [0.1, 0.4]]))     # kept although costlier
    acc.update([1, 2], [10, 20], np.array([[np.nan, 0.1], [0.1, np.nan]]))  # both switch
    acc.update([1], [30], np.array([[np.nan]]))                           # a miss and a false positive
    c = acc.counts
    assert (c.objects, c.matches, c.switches, c.misses, c.false_positives) == (7, 6, 2, 1, 1)
    assert c.distance_sum == pytest.approx(0.1 + 0.3 + 0.4 + 0.4 + 0.1 + 0.1)
    assert c.mota == pytest.approx(1 - 4 / 7)


def test_results_in_both_file_formats_and_as_records(sequences, val_dir, tmp_path):
    # the 2018 submission format: the annotation files with joint scores
    submission = tmp_path / "2018"
    submission.mkdir()
    for file in val_dir.glob("*.json"):
        data = json.loads(file.read_text())
        for a in data["annotations"]:
            a["scores"] = [0.9] * 17
        (submission / file.name).write_text(json.dumps(data))
    predictions, layout = pt.load_results(submission)
    assert layout.keypoints[:3] == ("nose", "head_bottom", "head_top")
    assert pt.evaluate_posetrack(sequences, predictions, layout)["MOTA"] == pytest.approx(1.0)

    # the same in the 2017 annolist format, ground truth and predictions
    old = tmp_path / "2017"
    old.mkdir()
    for s in sequences:
        annolist = []
        for f in s.frames:
            rects = []
            for kp, track, head in zip(f.keypoints, f.track_ids, f.head_size):
                side = head / 0.6 / np.sqrt(2)
                points = [{"id": [int(j)], "x": [kp[j, 0]], "y": [kp[j, 1]], "score": [0.9]}
                          for j in np.flatnonzero(kp[:, 2])]
                rects.append({"x1": [0], "y1": [0], "x2": [side], "y2": [side], "track_id": [int(track)],
                              "annopoints": [{"point": points}]})
            regions = [{"point": [{"x": [float(x)], "y": [float(y)]} for x, y in p]} for p in f.ignore_regions]
            annolist.append({"image": [{"name": f.image}], "annorect": rects, "ignore_regions": regions})
        (old / f"{s.name}.json").write_text(json.dumps({"annolist": annolist}))
    old_gt = pt.load_ground_truth(old)
    old_predictions, old_layout = pt.load_results(old)
    assert old_layout is POSETRACK17
    metrics = pt.evaluate_posetrack(old_gt, old_predictions, old_layout)
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["MOTA"] == pytest.approx(1.0)
    frames = pt.make_frames(old_gt, old_predictions, old_layout)
    assert sum(j.positives for j in collect_detections(frames)) == \
        sum(j.positives for j in collect_detections(pt.make_frames(sequences, predictions, layout)))

    # COCO-style records in the PoseTrack 2018 layout, keyed by image id
    records = [{"image_id": k, "keypoints": p.keypoints[i].ravel().tolist(), "score": 0.5,
                "track_id": int(p.track_ids[i])}
               for k, p in predictions.items() if isinstance(k, int) for i in range(len(p.keypoints))]
    (tmp_path / "records.json").write_text(json.dumps(records))
    by_record, record_layout = pt.load_results(tmp_path / "records.json", POSETRACK18)
    assert pt.evaluate_posetrack(sequences, by_record, record_layout)["mAP"] == pytest.approx(1.0)


def test_repeated_track_id_in_a_frame_is_an_error(sequences):
    predictions = perfect(sequences)
    crowded = next(k for k, p in predictions.items() if len(p.track_ids) > 1)
    predictions[crowded].track_ids[:] = 3
    with pytest.raises(InputError, match="repeat a track id"):
        evaluate(sequences, predictions)


def test_malformed_files_name_the_file(val_dir, tmp_path):
    data = json.loads(next(val_dir.glob("*.json")).read_text())
    no_head = copy.deepcopy(data)
    del no_head["annotations"][0]["bbox_head"]
    short = copy.deepcopy(data)
    short["annotations"][0]["keypoints"] = short["annotations"][0]["keypoints"][:30]
    for name, content, problem in (("nohead.json", no_head, "no 'bbox_head'"),
                                   ("short.json", short, "30 keypoint values"),
                                   ("other.json", {"frames": []}, "not a PoseTrack file"),
                                   ("nox.json", {"annolist": [{"image": [{"name": "a/1.jpg"}], "annorect": [
                                       {"x1": [0], "y1": [0], "x2": [5], "y2": [5],
                                        "annopoints": [{"point": [{"id": [0], "y": [1]}]}]}]}]},
                                    r"malformed \(KeyError: 'x'\)")):
        path = tmp_path / name
        path.write_text(json.dumps(content))
        with pytest.raises(InputError, match=problem) as info:
            pt.load_ground_truth(path)
        assert str(info.value).startswith(str(path))
    unscored = tmp_path / "unscored.json"
    unscored.write_text(json.dumps(data))
    with pytest.raises(InputError, match="no joint 'scores' and no person 'score'"):
        pt.load_results(unscored)
