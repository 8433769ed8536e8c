"""COCO protocol on the real fixtures: known answers and controlled corruptions."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ftpose.data.coco import load_coco_annotations
from ftpose.evaluation.coco import evaluate_coco, load_coco_results
from ftpose.files import InputError
from ftpose.keypoints import COCO17

FIXTURES = ("coco_mini/annotations/person_keypoints_train2017.json", "coco8_pose/person_keypoints_val.json",
            "mmpose_fixtures/coco/test_coco.json")


def perfect_results(ann, seed=0) -> list[dict]:
    """Every scorable person exactly as annotated, with distinct random person scores."""
    rng = np.random.default_rng(seed)
    out = []
    for a in load_coco_annotations(ann).dataset["annotations"]:
        if a["iscrowd"] or a["num_keypoints"] == 0:
            continue
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        kp[kp[:, 2] == 0] = 0
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(),
                    "score": float(rng.uniform(0.5, 1.0)), "gt_id": a["id"]})
    return out


def shifted(results, pixels, axis=1):
    out = []
    for r in results:
        kp = np.asarray(r["keypoints"]).reshape(-1, 3)
        kp[kp[:, 2] > 0, axis] += pixels
        out.append(dict(r, keypoints=kp.ravel().tolist()))
    return out


def mirrored_sides(results, every=2):
    """Left and right joints exchanged on every ``every``-th person."""
    out = []
    for i, r in enumerate(results):
        kp = np.asarray(r["keypoints"]).reshape(-1, 3)
        out.append(dict(r, keypoints=kp[COCO17.flip_permutation].ravel().tolist()) if i % every == 0 else r)
    return out


@pytest.fixture(scope="module")
def coco_mini(shared_data):
    return str(shared_data / FIXTURES[0])


@pytest.mark.parametrize("fixture", FIXTURES)
def test_perfect_predictions_score_one(shared_data, fixture):
    ann = shared_data / fixture
    metrics = evaluate_coco(ann, perfect_results(ann))
    for name in ("AP", "AP50", "AP75", "APL", "AR"):
        assert metrics[name] == pytest.approx(1.0)


def test_shifted_keypoints_lower_ap_monotonically(coco_mini):
    base = perfect_results(coco_mini)
    aps = [evaluate_coco(coco_mini, shifted(base, k))["AP"] for k in (0, 1, 2, 4, 8, 16)]
    assert aps[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(aps, aps[1:])), aps
    assert aps[-1] < 0.2


def test_mirrored_sides_lower_ap(coco_mini):
    base = perfect_results(coco_mini)
    half = evaluate_coco(coco_mini, mirrored_sides(base, 2))["AP"]
    everyone = evaluate_coco(coco_mini, mirrored_sides(base, 1))["AP"]
    assert 1.0 > half > everyone


def test_dropped_people_lower_recall_and_ap(coco_mini):
    base = perfect_results(coco_mini)
    results = [evaluate_coco(coco_mini, [r for i, r in enumerate(base) if i % 4 >= dropped])
               for dropped in range(4)]
    for m in ("AP", "AR"):
        values = [r[m] for r in results]
        assert all(a > b for a, b in zip(values, values[1:])), (m, values)
    # dropping a quarter of the people leaves about three quarters of the recall
    assert results[1]["AR"] == pytest.approx(0.75, abs=0.03)


def test_duplicates_lower_ap(coco_mini):
    base = perfect_results(coco_mini)
    aps = []
    for fraction in (0, 0.25, 0.5, 1.0):
        duplicates = [dict(r, score=0.9 * r["score"]) for r in base[:int(fraction * len(base))]]
        aps.append(evaluate_coco(coco_mini, base + duplicates)["AP"])
    assert aps[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(aps, aps[1:])), aps


def test_false_positives_on_images_without_people_count(coco_mini):
    gt = load_coco_annotations(coco_mini)
    with_people = {a["image_id"] for a in gt.dataset["annotations"]}
    empty_image = next(i for i in sorted(gt.getImgIds()) if i not in with_people)
    base = perfect_results(coco_mini)
    ghost = dict(base[0], image_id=empty_image, score=2.0)
    assert evaluate_coco(coco_mini, base + [ghost])["AP"] < 1.0
    # scored only on the images with people, the ghost does not exist
    assert evaluate_coco(coco_mini, base + [ghost], image_ids=with_people)["AP"] == pytest.approx(1.0)


def test_detection_inside_a_crowd_region_is_ignored(coco_mini):
    gt = load_coco_annotations(coco_mini)
    crowd = next(a for a in gt.dataset["annotations"] if a["iscrowd"])
    x, y, w, h = crowd["bbox"]
    kp = np.zeros((17, 3))
    kp[:, 0] = x + w * np.linspace(0.3, 0.7, 17)
    kp[:, 1] = y + h / 2
    kp[:, 2] = 1
    inside = {"image_id": crowd["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 2.0}
    base = perfect_results(coco_mini)
    assert evaluate_coco(coco_mini, base + [inside])["AP"] == pytest.approx(1.0)
    elsewhere = dict(inside, image_id=next(a["image_id"] for a in gt.dataset["annotations"]
                                           if a["image_id"] != crowd["image_id"] and not a["iscrowd"]))
    assert evaluate_coco(coco_mini, base + [elsewhere])["AP"] < 1.0


def test_only_twenty_people_per_image_count_and_score_ranks(coco_mini):
    base = perfect_results(coco_mini)
    image_id = base[0]["image_id"]
    far = dict(base[0], keypoints=(np.asarray(base[0]["keypoints"]) + 5000 * (np.arange(51) % 3 != 2)).tolist())
    low = [dict(far, score=0.01) for _ in range(25)]
    high = [dict(far, score=5.0) for _ in range(25)]
    # low-scored junk after the true people costs nothing; high-scored junk ranks first,
    # and 25 of it pushes the image's true people out of its 20 counted detections
    assert evaluate_coco(coco_mini, base + low)["AP"] == pytest.approx(1.0)
    pushed = evaluate_coco(coco_mini, base + high)
    people_there = sum(r["image_id"] == image_id for r in base)
    assert pushed["AR"] == pytest.approx(1 - people_there / len(base), abs=1e-6)


def test_malformed_results_name_the_file(coco_mini, tmp_path):
    gt = load_coco_annotations(coco_mini)
    good = perfect_results(coco_mini)[0]
    cases = {
        "short.json": [dict(good, keypoints=good["keypoints"][:50])],
        "noscore.json": [{k: v for k, v in good.items() if k != "score"}],
        "unknown.json": [dict(good, image_id=-7)],
        "object.json": {"annotations": []},
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(content))
        with pytest.raises(InputError) as info:
            load_coco_results(path, gt)
        message = str(info.value)
        assert message.startswith(str(path)) and "\n" not in message
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_coco_results(broken, gt)
