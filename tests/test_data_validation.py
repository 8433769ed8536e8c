"""Bad annotation records are refused when loaded, with one line naming file, record and field.

One NaN keypoint used to train a model whose every weight was NaN (exit code 0).  Each
case here starts from the real coco8_pose annotations and breaks one record.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ftpose.data.coco import load_coco_annotations
from ftpose.data.validate import AnnotationWarning
from ftpose.files import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def coco8(shared_data) -> tuple[dict, Path]:
    root = shared_data / "coco8_pose"
    return json.loads((root / "person_keypoints_train.json").read_text()), root


def _broken(data: dict, change) -> dict:
    data = copy.deepcopy(data)
    change(data)
    return data


def _set_keypoint(value):
    def change(data):
        data["annotations"][2]["keypoints"][4] = value
    return change


CASES = [
    (_set_keypoint(float("nan")), "annotations[2] (id {ann2}): 'keypoints' value 4 is nan (not finite)"),
    (_set_keypoint(float("inf")), "'keypoints' value 4 is inf (not finite)"),
    (_set_keypoint("12"), "annotations[2] (id {ann2}): 'keypoints' holds values that are not numbers"),
    (lambda d: d["annotations"][2].update(keypoints=None), "annotations[2] (id {ann2}): 'keypoints' is null"),
    (lambda d: d["annotations"][2]["keypoints"].__setitem__(2, 3), "'keypoints' flag of joint 0 is 3 (allowed: 0, 1, 2)"),
    (lambda d: d["annotations"][2]["bbox"].__setitem__(2, -5.0), "annotations[2] (id {ann2}): 'bbox' [" ),
    (lambda d: d["annotations"][2].update(area=float("nan")), "annotations[2] (id {ann2}): 'area' value 0 is nan"),
    (lambda d: d["annotations"][2].update(area=-1.0), "'area' is -1.0, must not be negative"),
    (lambda d: d["annotations"][3].update(id=d["annotations"][2]["id"]), "duplicate annotation id {ann2} (2 records)"),
    (lambda d: d["images"][1].update(id=d["images"][0]["id"]), "duplicate image id"),
    (lambda d: d["annotations"][2].update(image_id=999999), "'image_id' 999999 is not one of the file's images"),
    (lambda d: d["images"][0].update(file_name="../../etc/passwd"), "'file_name' '../../etc/passwd' points outside"),
    (lambda d: d["images"][0].update(file_name="/etc/passwd"), "'file_name' '/etc/passwd' points outside"),
    (lambda d: d["images"][0].update(width=0), "images[0] (id {img0}): 'width' is 0, must be positive"),
]


@pytest.mark.parametrize("change, message", CASES)
def test_a_bad_record_is_one_line_naming_file_record_and_field(coco8, tmp_path, change, message):
    data, _ = coco8
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_broken(data, change)))
    with pytest.raises(InputError) as error:
        load_coco_annotations(path)
    text = str(error.value)
    expected = message.format(ann2=data["annotations"][2]["id"], img0=data["images"][0]["id"])
    assert text.startswith(f"{path}: ") and expected in text and "\n" not in text, text


def test_the_real_file_loads_without_warnings(coco8):
    data, _ = coco8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_coco_annotations(copy.deepcopy(data)).getAnnIds()) == len(data["annotations"])


def test_tolerated_oddities_are_counted_in_one_warning(coco8):
    data, _ = coco8

    def change(d):
        for a in d["annotations"][:2]:
            a["bbox"][2] = 0.0
        d["annotations"][4]["num_keypoints"] += 1

    with pytest.warns(AnnotationWarning) as caught:
        load_coco_annotations(_broken(data, change))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "2 annotations with a zero-sized 'bbox'" in message
    assert "1 annotations whose 'num_keypoints' differs" in message


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ftpose", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("change, field", [(_set_keypoint(float("nan")), "'keypoints' value 4 is nan"),
                                           (CASES[8][0], "duplicate annotation id")])
def test_train_and_eval_refuse_the_file_with_exit_code_1(coco8, tmp_path, change, field):
    data, root = coco8
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_broken(data, change)))
    train = _cli("train", "--data", f"coco:{path}:{root}", "--steps", 1, "--out", tmp_path / "run", "--quiet")
    evaluate = _cli("eval", "--dataset", "coco", "--ann", path, "--oracle")
    for result in (train, evaluate):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and field in lines[0] and str(path) in lines[0], \
            result.stderr
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").glob("checkpoint_*"))


def test_the_command_line_shows_the_count_as_one_warning_line(coco8, tmp_path):
    data, _ = coco8
    path = tmp_path / "zero.json"
    path.write_text(json.dumps(_broken(data, lambda d: d["annotations"][0]["bbox"].__setitem__(2, 0.0))))
    result = _cli("eval", "--dataset", "coco", "--ann", path, "--oracle")
    assert result.returncode == 0, result.stderr
    assert f"warning: {path}: 1 annotations with a zero-sized 'bbox'\n" in result.stderr
