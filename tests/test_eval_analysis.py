"""Ronchi & Perona error analysis: each corruption is charged to its own error type."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ftpose.data.coco import load_coco_annotations
from ftpose.evaluation import analysis
from ftpose.evaluation.coco import evaluate_coco, run_cocoeval
from ftpose.keypoints import COCO17


@pytest.fixture(scope="module")
def ann(shared_data):
    return str(shared_data / "coco_mini/annotations/person_keypoints_train2017.json")


@pytest.fixture(scope="module")
def perfect(ann):
    rng = np.random.default_rng(0)
    out = []
    for a in load_coco_annotations(ann).dataset["annotations"]:
        if a["iscrowd"] or a["num_keypoints"] == 0:
            continue
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        kp[kp[:, 2] == 0] = 0
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(),
                    "score": float(rng.uniform(0.5, 1))})
    return out


def _gains(result, oks=0.5):
    """AP gained at each stage over the previous one."""
    aps = [result.ap(s, oks) for s in analysis.STAGES]
    return dict(zip(analysis.STAGES[1:], np.diff(aps)))


def test_keypoint_similarity_averages_to_pycocotools_oks(ann, perfect):
    gt = load_coco_annotations(ann)
    results = []
    for r in perfect[:20]:
        kp = np.asarray(r["keypoints"]).reshape(-1, 3)
        kp[:, :2] += np.array([3.0, -2.0])
        results.append(dict(r, keypoints=kp.ravel().tolist()))
    ev = run_cocoeval(gt, results)
    checked = 0
    for (image_id, _), ious in ev.ious.items():
        if len(ious) == 0:
            continue
        people = ev._gts[image_id, 1]
        mine = [r for r in results if r["image_id"] == image_id]
        order = np.argsort([-r["score"] for r in mine], kind="mergesort")
        for row, d in enumerate(order):
            for col, person in enumerate(people):
                kp = np.asarray(person["keypoints"], np.float64).reshape(-1, 3)
                if person["iscrowd"] or not (kp[:, 2] > 0).any():
                    continue
                ks = analysis.keypoint_similarity(np.reshape(mine[d]["keypoints"], (-1, 3))[:, :2], kp,
                                                  person["area"])
                assert ks[kp[:, 2] > 0].mean() == pytest.approx(ious[row, col], abs=1e-9)
                checked += 1
    assert checked > 20


def test_distance_for_similarity_inverts_it():
    gt = np.zeros((17, 3))
    gt[:, 2] = 2
    for ks in (0.5, 0.85, 0.99):
        offsets = analysis.distance_for_similarity(np.full(17, ks), 5000.0)
        points = np.stack([offsets, np.zeros(17)], 1)
        np.testing.assert_allclose(analysis.keypoint_similarity(points, gt, 5000.0), ks)


def test_perfect_predictions_have_no_errors(ann, perfect):
    result = analysis.analyze(ann, perfect)
    assert result.keypoint_errors["good"] == sum(np.count_nonzero(np.reshape(r["keypoints"], (-1, 3))[:, 2])
                                                 for r in perfect)
    assert all(result.keypoint_errors[e] == 0 for e in analysis.KEYPOINT_ERRORS)
    for stage in analysis.STAGES:
        assert result.ap(stage, 0.5) == pytest.approx(1.0)


def test_first_curve_is_the_standard_ap(ann, perfect):
    shifted = [dict(r, keypoints=(np.asarray(r["keypoints"]) + 3 * (np.arange(51) % 3 == 1)).tolist())
               for r in perfect]
    result = analysis.analyze(ann, shifted)
    standard = evaluate_coco(ann, shifted)
    assert result.ap("original", 0.5) == pytest.approx(standard["AP50"])
    assert result.ap("original", 0.75) == pytest.approx(standard["AP75"])
    aps = [result.ap(s, 0.75) for s in analysis.STAGES]
    assert all(b >= a - 1e-9 for a, b in zip(aps, aps[1:])), aps
    assert aps[-1] == pytest.approx(1.0)


def test_mirrored_sides_are_inversions_not_jitter(ann, perfect):
    mirrored = [dict(r, keypoints=np.reshape(r["keypoints"], (-1, 3))[COCO17.flip_permutation].ravel().tolist())
                if i % 2 == 0 else r for i, r in enumerate(perfect)]
    result = analysis.analyze(ann, mirrored)
    errors = result.keypoint_errors
    assert errors["jitter"] == 0
    assert errors["inversion"] > 4 * (errors["swap"] + errors["miss"])
    gains = _gains(result)
    assert max(gains, key=gains.get) == "inversion"
    assert gains["jitter"] == pytest.approx(0.0)


def test_shifts_are_jitter_then_misses(ann, perfect):
    def shift(k):
        return [dict(r, keypoints=(np.asarray(r["keypoints"]) + k * (np.arange(51) % 3 == 1)).tolist())
                for r in perfect]

    small, large = analysis.analyze(ann, shift(3)), analysis.analyze(ann, shift(12))
    for result in (small, large):
        e = result.keypoint_errors
        assert e["jitter"] + e["miss"] > 10 * (e["inversion"] + e["swap"])
    assert small.keypoint_errors["jitter"] > small.keypoint_errors["miss"]
    assert large.keypoint_errors["miss"] > small.keypoint_errors["miss"]
    gains = _gains(large)
    assert gains["miss"] > gains["inversion"] + gains["swap"]


def test_dropped_people_are_false_negatives_only(ann, perfect):
    result = analysis.analyze(ann, perfect[::2])
    gains = _gains(result)
    assert result.false_negatives[0.5] == len(perfect) - len(perfect[::2])
    assert all(gains[s] == pytest.approx(0.0) for s in analysis.STAGES[1:-1])
    assert gains["false_negative"] > 0.4


def test_duplicates_are_scoring_and_background_errors(ann, perfect):
    duplicates = [dict(r, score=0.9 * r["score"]) for r in perfect]
    result = analysis.analyze(ann, perfect + duplicates)
    gains = _gains(result)
    # A duplicate can reach OKS 0.1 with a neighbour of its person and then counts as
    # that neighbour's swapped keypoints; in this set that is worth under 0.01 AP.
    assert sum(gains[s] for s in analysis.KEYPOINT_ERRORS) < 0.01
    assert gains["score"] > 0.2
    assert result.ap("score", 0.5) == pytest.approx(1.0)


def test_outputs_json_and_plots(ann, perfect, tmp_path):
    result = analysis.analyze(ann, perfect[::2])
    written = analysis.write_analysis(result, tmp_path)
    assert [p.name for p in written] == ["error_analysis.json", "error_analysis_oks50.png",
                                         "error_analysis_oks75.png"]
    data = json.loads(written[0].read_text())
    assert set(data["ap"]["0.5"]) == set(analysis.STAGES)
    assert data["ap"]["0.5"]["false_negative"] == pytest.approx(1.0)
    assert len(data["precision"]["0.75"]["original"]) == 101
    for png in written[1:]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
