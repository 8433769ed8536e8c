"""Oracle evaluation: perfect maps from real annotations, decoded and scored by pycocotools."""
from __future__ import annotations

import numpy as np
import pytest

from ftpose.data.coco import load_coco_annotations
from ftpose.evaluation.coco import evaluate_coco
from ftpose.evaluation.oracle import oracle_people, oracle_results
from ftpose.keypoints import COCO17, NETWORK, convert

ANNOTATION_FILES = [
    "coco_mini/annotations/person_keypoints_train2017.json",
    "coco8_pose/person_keypoints_train.json",
    "coco8_pose/person_keypoints_val.json",
    "mmpose_fixtures/coco/test_coco.json",
]


@pytest.mark.parametrize("name", ANNOTATION_FILES)
def test_oracle_ap_is_at_least_0_90(shared_data, name):
    path = shared_data / name
    metrics = evaluate_coco(path, oracle_results(path))
    assert metrics["AP"] >= 0.90, metrics


def test_oracle_results_are_coco_records_for_the_annotated_images(shared_data):
    path = shared_data / "coco_mini/annotations/person_keypoints_train2017.json"
    coco = load_coco_annotations(path)
    results = oracle_results(path)
    with_people = {a["image_id"] for a in coco.dataset["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]}
    assert {r["image_id"] for r in results} == with_people
    for r in results:
        assert r["category_id"] == 1 and len(r["keypoints"]) == 51 and 0 < r["score"] <= 1


def test_oracle_people_are_in_image_pixels_at_any_image_size():
    kp = np.zeros((1, 17, 3))
    kp[0, COCO17.index["left_shoulder"]] = (40, 30, 2)
    kp[0, COCO17.index["left_elbow"]] = (52, 61, 2)
    for height, width in [(83, 101), (96, 96)]:
        people = oracle_people(convert(kp, COCO17, NETWORK), height, width)
        assert len(people) == 1
        np.testing.assert_allclose(people.to_coco17()[0, [5, 7], :2], [[40, 30], [52, 61]], atol=1e-3)
        upsampled = oracle_people(convert(kp, COCO17, NETWORK), height, width, upsample=True)
        np.testing.assert_allclose(upsampled.to_coco17()[0, [5, 7], :2], [[40, 30], [52, 61]], atol=0.5)


def test_an_annotation_file_without_people_gives_no_results():
    ann = {"images": [{"id": 1, "width": 64, "height": 48}], "annotations": []}
    assert oracle_results(ann) == []
