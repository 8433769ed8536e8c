"""MPII multi-person protocol: PCKh matching, per-part AP, and the real fixture."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ftpose.evaluation import mpii
from ftpose.evaluation.pckh import Frame, average_precision, match_frame
from ftpose.files import InputError
from ftpose.keypoints import COCO17, MPII16, OPENPOSE18, convert


@pytest.fixture(scope="module")
def mpii_json(shared_data):
    return shared_data / "mmpose_fixtures/mpii/test_mpii.json"


@pytest.fixture(scope="module")
def ground_truth(mpii_json):
    return mpii.load_ground_truth(mpii_json)


def perfect(ground_truth, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {g.image: mpii.PredictedPeople(g.keypoints.copy(),
                                          np.repeat(rng.uniform(0.5, 1, (len(g.keypoints), 1)), 16, 1))
            for g in ground_truth}


def corrupt(predictions: dict, change) -> dict:
    out = {}
    for i, (image, people) in enumerate(predictions.items()):
        kp, scores = change(i, people.keypoints.copy(), people.scores.copy())
        out[image] = mpii.PredictedPeople(kp, scores)
    return out


def test_average_precision_known_answer():
    # ranked: hit, miss, hit; 3 positives -> precision 1 up to recall 1/3, 2/3 up to 2/3
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 3) == pytest.approx(5 / 9)
    assert average_precision(np.array([0.7, 0.8, 0.9]), np.array([1, 1, 1]), 3) == pytest.approx(1.0)
    assert average_precision(np.array([]), np.array([]), 4) == 0.0
    assert np.isnan(average_precision(np.array([0.5]), np.array([0]), 0))


def test_matching_keeps_each_predictions_preferred_person_only():
    # Two people 100 px apart, head size 10 (threshold 5 px).  Both predictions are
    # nearest to person 0; the worse one is left unmatched although person 1 is free,
    # exactly as the MPII tool and poseval assign.
    gt = np.array([[[0, 0], [0, 10]], [[100, 0], [100, 10]]], np.float64)
    pred = np.array([[[1, 0], [0, 11]], [[2, 0], [60, 10]]], np.float64)
    frame = Frame(gt, np.ones((2, 2), bool), np.array([10.0, 10.0]), pred, np.ones((2, 2), bool),
                  np.ones((2, 2)))
    match = match_frame(frame)
    assert match.gt_of_pred.tolist() == [0, -1]
    assert match.within[0, 0].all() and match.within[1, 0].tolist() == [True, False]


def test_head_size_from_json_is_the_head_segment(ground_truth, mpii_json):
    record = json.loads(mpii_json.read_text())[0]
    neck, top = np.array(record["joints"][8]), np.array(record["joints"][9])
    image = next(g for g in ground_truth if g.image == record["image"])
    assert image.head_size[0] == pytest.approx(np.linalg.norm(top - neck))
    assert mpii.head_size_from_box([10, 20, 40, 60]) == pytest.approx(0.6 * 50)


def test_perfect_predictions_score_one(ground_truth):
    metrics = mpii.evaluate_mpii(ground_truth, perfect(ground_truth))
    for column in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "mAP"):
        assert metrics[column] == pytest.approx(1.0)


def test_growing_shift_lowers_map_monotonically(ground_truth):
    base = perfect(ground_truth)

    def shift(k):
        def change(i, kp, scores):
            kp[kp[..., 2] > 0, 0] += k
            return kp, scores
        return change

    maps = [mpii.evaluate_mpii(ground_truth, corrupt(base, shift(k)))["mAP"] for k in (0, 20, 40, 60, 100)]
    assert all(a >= b for a, b in zip(maps, maps[1:])) and maps[0] > maps[2] > maps[-1], maps
    assert maps[-1] < 0.2


def test_mirrored_sides_on_half_the_people(ground_truth):
    base = perfect(ground_truth)

    def mirror(i, kp, scores):
        return (kp[:, MPII16.flip_permutation] if i % 2 == 0 else kp), scores

    metrics = mpii.evaluate_mpii(ground_truth, corrupt(base, mirror))
    assert metrics["mAP"] < 1.0
    assert metrics["Head"] == pytest.approx(1.0)  # head joints have no side


def test_dropped_people_and_duplicates(ground_truth):
    base = perfect(ground_truth)
    images = list(base)
    maps = [mpii.evaluate_mpii(ground_truth, {k: base[k] for k in images[n:]})["mAP"] for n in range(4)]
    assert all(a > b for a, b in zip(maps, maps[1:])), maps

    def duplicate(i, kp, scores):
        if i % 2:
            return kp, scores
        return np.concatenate([kp, kp]), np.concatenate([scores, 0.9 * scores])

    assert mpii.evaluate_mpii(ground_truth, corrupt(base, duplicate))["mAP"] < 1.0


def test_network_layouts_have_no_head_column(ground_truth):
    coco = {k: mpii.PredictedPeople(convert(p.keypoints, MPII16, COCO17), np.ones((len(p.keypoints), 17)))
            for k, p in perfect(ground_truth).items()}
    metrics = mpii.evaluate_mpii(ground_truth, coco, COCO17)
    assert metrics["Head"] is None and metrics["AP/head_top"] is None
    assert metrics["Shoulder"] == pytest.approx(1.0) and metrics["mAP"] == pytest.approx(1.0)
    network = {k: mpii.PredictedPeople(convert(p.keypoints, MPII16, OPENPOSE18), np.ones((len(p.keypoints), 18)))
               for k, p in perfect(ground_truth).items()}
    assert mpii.evaluate_mpii(ground_truth, network, OPENPOSE18)["mAP"] == pytest.approx(1.0)


def test_results_file_round_trip_and_layout_by_length(ground_truth, tmp_path):
    records = [{"image": g.image, "keypoints": g.keypoints[0].ravel().tolist(), "score": 0.9} for g in ground_truth]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(records))
    predictions, layout = mpii.load_results(path)
    assert layout is MPII16
    assert mpii.evaluate_mpii(ground_truth, predictions, layout)["mAP"] == pytest.approx(1.0)
    coco_records = [dict(r, keypoints=convert(np.reshape(r["keypoints"], (16, 3)), MPII16, COCO17).ravel().tolist())
                    for r in records]
    path.write_text(json.dumps(coco_records))
    assert mpii.load_results(path)[1] is COCO17


def test_official_mat_release_is_read(ground_truth, mpii_json, tmp_path):
    from scipy.io import savemat

    boxes = {}
    annolist = []
    for g in ground_truth:
        rects = []
        for kp in g.keypoints:
            neck, top = kp[8, :2], kp[9, :2]
            box = [min(neck[0], top[0]), min(neck[1], top[1]), max(neck[0], top[0]), max(neck[1], top[1])]
            boxes[g.image] = box
            points = [{"id": j, "x": kp[j, 0], "y": kp[j, 1], "is_visible": 1} for j in np.flatnonzero(kp[:, 2])]
            rects.append({"x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3], "annopoints": {"point": points}})
        annolist.append({"image": {"name": g.image}, "annorect": rects})
    path = tmp_path / "release.mat"
    savemat(path, {"RELEASE": {"annolist": annolist, "img_train": np.ones(len(annolist))}})
    loaded = {g.image: g for g in mpii.load_ground_truth(path)}
    assert set(loaded) == {g.image for g in ground_truth}
    for g in ground_truth:
        np.testing.assert_allclose(loaded[g.image].keypoints, g.keypoints)
        assert loaded[g.image].head_size[0] == pytest.approx(mpii.head_size_from_box(boxes[g.image]))


@pytest.mark.parametrize("content, problem", [
    ({"image": "a.jpg"}, "top level is not a list"),
    ([{"image": "a.jpg", "joints": [[0, 0]] * 16}], "lacks joints_vis"),
    ([{"image": "a.jpg", "joints": [[0, 0]] * 15, "joints_vis": [1] * 15}], "'joints' has 30 values, expected 32"),
    ([{"image": "a.jpg", "joints": [[float("nan"), 0]] + [[0, 0]] * 15, "joints_vis": [1] * 16}],
     r"record 0 \(a.jpg\): 'joints' value 0 is nan"),
    ([{"image": "a.jpg", "joints": [[0, 0]] * 16, "joints_vis": [2] + [1] * 15}],
     r"'joints_vis' flag of joint 0 is 2 \(allowed: 0, 1\)"),
    ([{"image": "a.jpg", "joints": [[0, 0]] * 16, "joints_vis": [1] * 16, "head_box": [10, 10, 5, 20]}],
     "'head_box' .* has a negative size"),
    ([{"image": "../a.jpg", "joints": [[0, 0]] * 16, "joints_vis": [1] * 16}], "points outside the images folder"),
])
def test_malformed_ground_truth_names_the_file(tmp_path, content, problem):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=problem) as info:
        mpii.load_ground_truth(path)
    assert str(info.value).startswith(str(path))


def test_malformed_results_name_the_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"image": "a.jpg", "keypoints": [1.0] * 20, "score": 1}]))
    with pytest.raises(InputError, match="has 20 keypoint values") as info:
        mpii.load_results(path)
    assert str(info.value).startswith(str(path))
