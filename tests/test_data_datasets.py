"""Dataset readers on the real annotation files: COCO, MPII (json and .mat), PoseTrack 2017/2018."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import savemat

from ftpose.data import DataSpec, annotated_parts, build_dataset, channel_weights, load_coco, load_mpii, load_posetrack
from ftpose.files import InputError
from ftpose.keypoints import COCO17, LIMBS, MPII16, NETWORK, POSETRACK17, POSETRACK18, convert


def test_coco_reader_keeps_every_person_with_keypoints_and_masks_the_rest(shared_data):
    root = shared_data / "coco_mini"
    ann_file = root / "annotations" / "person_keypoints_train2017.json"
    raw = json.loads(ann_file.read_text())
    images = load_coco(ann_file, root / "train2017")

    with_keypoints = [a for a in raw["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    assert sum(len(im.keypoints) for im in images) == len(with_keypoints) == 86
    assert len(images) == len({a["image_id"] for a in with_keypoints}) == 28
    # every crowd region lies in an image with keypointed people here, so all 5 are kept as ignore regions
    assert sum(bool(r.get("iscrowd")) for im in images for r in im.ignore) == 5

    by_id = {im.image_id: im for im in images}
    first = with_keypoints[0]
    image = by_id[first["image_id"]]
    mine = [a for a in with_keypoints if a["image_id"] == first["image_id"]]
    expected = convert(np.array(first["keypoints"], float).reshape(17, 3), COCO17, NETWORK)
    np.testing.assert_allclose(image.keypoints[mine.index(first)], expected, atol=1e-4)
    x, y, w, h = first["bbox"]
    np.testing.assert_allclose(image.centers[mine.index(first)], (x + w / 2, y + h / 2), atol=1e-3)
    assert image.heights[mine.index(first)] == pytest.approx(h, abs=1e-3)
    # the neck is derived: the shoulders' midpoint
    kp = image.keypoints[mine.index(first)]
    if kp[2, 2] > 0 and kp[5, 2] > 0:
        np.testing.assert_allclose(kp[1, :2], (kp[2, :2] + kp[5, :2]) / 2, atol=1e-4)


def test_annotated_parts_follow_the_layouts():
    coco, mpii = annotated_parts(COCO17), annotated_parts(MPII16)
    pt17, pt18 = annotated_parts(POSETRACK17), annotated_parts(POSETRACK18)
    assert coco.all()
    face = ["nose", "right_eye", "left_eye", "right_ear", "left_ear"]
    assert sorted(NETWORK.keypoints[i] for i in np.flatnonzero(~mpii)) == sorted(face)
    np.testing.assert_array_equal(pt17, pt18)  # the "posetrack" kind relies on this
    assert sorted(NETWORK.keypoints[i] for i in np.flatnonzero(~pt18)) == sorted(face[1:])


def test_mpii_loss_weights_drop_the_face_and_its_limbs():
    heatmap, paf = channel_weights(annotated_parts(MPII16))
    missing = {NETWORK.index[n] for n in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")}
    for j in range(18):
        assert heatmap[j] == (0.0 if j in missing else 1.0)
    assert heatmap[18] == 0.0  # background would claim "no nose here"
    for k, (a, b) in enumerate(LIMBS):
        expected = 0.0 if a in missing or b in missing else 1.0
        assert paf[2 * k] == paf[2 * k + 1] == expected
    heatmap, paf = channel_weights(annotated_parts(COCO17))
    assert heatmap.all() and paf.all()


def test_mpii_json_reader(shared_data):
    root = shared_data / "mmpose_fixtures" / "mpii"
    raw = json.loads((root / "test_mpii.json").read_text())
    images = load_mpii(root / "test_mpii.json", root)
    assert len(images) == len({r["image"] for r in raw}) == 5
    first = next(im for im in images if im.path.name == raw[0]["image"])
    joints = np.concatenate([np.array(raw[0]["joints"]), 2.0 * np.array(raw[0]["joints_vis"])[:, None]], 1)
    np.testing.assert_allclose(first.keypoints[0], convert(joints, MPII16, NETWORK), atol=1e-4)
    assert first.heights[0] == pytest.approx(200 * raw[0]["scale"], rel=1e-5)
    np.testing.assert_allclose(first.centers[0], raw[0]["center"])


def _mpii_release(records: list[dict]) -> dict:
    """The official RELEASE struct, as MATLAB stores it, built from json-list records."""
    point_dtype = [("id", "O"), ("x", "O"), ("y", "O"), ("is_visible", "O")]
    rect_dtype = [("x1", "O"), ("y1", "O"), ("x2", "O"), ("y2", "O"), ("annopoints", "O"), ("scale", "O"),
                  ("objpos", "O")]
    annolist = np.zeros(len(records) + 1, dtype=[("image", "O"), ("annorect", "O")])
    for i, rec in enumerate(records):
        labelled = [k for k in range(16) if rec["joints_vis"][k]]
        points = np.zeros(len(labelled), dtype=point_dtype)
        for n, k in enumerate(labelled):
            # the release leaves is_visible empty for some joints
            visible = np.zeros((0, 0)) if k == 9 else np.array([[1]])
            points[n] = (k, rec["joints"][k][0], rec["joints"][k][1], visible)
        rect = np.zeros(1, dtype=rect_dtype)
        rect[0] = (0, 0, 1, 1, {"point": points}, rec["scale"], {"x": rec["center"][0], "y": rec["center"][1]})
        annolist[i] = ({"name": rec["image"]}, rect)
    # a test image (img_train 0) without people annotations, which must be skipped
    annolist[-1] = ({"name": "test_only.jpg"}, np.zeros((0, 0)))
    img_train = np.array([1] * len(records) + [0])
    return {"RELEASE": {"annolist": annolist, "img_train": img_train}}


def test_mpii_mat_reader_agrees_with_the_json_list(shared_data, tmp_path):
    root = shared_data / "mmpose_fixtures" / "mpii"
    raw = json.loads((root / "test_mpii.json").read_text())
    savemat(tmp_path / "release.mat", _mpii_release(raw))
    from_mat = load_mpii(tmp_path / "release.mat", root)
    from_json = load_mpii(root / "test_mpii.json", root)
    assert [im.path for im in from_mat] == [im.path for im in from_json]
    for a, b in zip(from_mat, from_json):
        labelled = b.keypoints[..., 2] > 0
        np.testing.assert_array_equal(a.keypoints[..., 2] > 0, labelled)
        np.testing.assert_allclose(a.keypoints[..., :2][labelled], b.keypoints[..., :2][labelled], atol=1e-4)
        np.testing.assert_allclose(a.heights, b.heights, rtol=1e-6)
        np.testing.assert_allclose(a.centers, b.centers)


def test_posetrack18_reader_reads_people_and_ignore_regions(shared_data):
    root = shared_data / "mmpose_fixtures" / "posetrack18"
    images = load_posetrack(root / "annotations" / "val", root)
    files = sorted((root / "annotations" / "val").glob("*.json"))
    raw = [json.loads(f.read_text()) for f in files]
    assert len(images) == 3
    assert sum(len(im.keypoints) for im in images) == 14
    for im, data in zip(images, raw):
        assert len([r for r in im.ignore if r.get("iscrowd")]) == len(data["images"][0]["ignore_regions_x"])
        first = data["annotations"][0]
        expected = convert(np.array(first["keypoints"], float).reshape(17, 3), POSETRACK18, NETWORK)
        np.testing.assert_allclose(im.keypoints[0], expected, atol=1e-3)


def _to_posetrack17(data: dict) -> dict:
    """Rewrite a PoseTrack 2018 file in the 2017 ``annolist`` format (the joints they share)."""
    frames = []
    for info in data["images"]:
        rects = []
        for a in data["annotations"]:
            if a["image_id"] != info["id"]:
                continue
            kps = np.array(a["keypoints"], float).reshape(17, 3)
            as17 = convert(kps, POSETRACK18, POSETRACK17)
            points = [{"id": [k], "x": [float(x)], "y": [float(y)], "is_visible": [1]}
                      for k, (x, y, v) in enumerate(as17) if v > 0]
            rects.append({"x1": [0], "y1": [0], "x2": [1], "y2": [1], "track_id": [a["track_id"]],
                          "annopoints": [{"point": points}]})
        regions = [{"point": [{"id": [n], "x": [x], "y": [y]} for n, (x, y) in enumerate(zip(xs, ys))]}
                   for xs, ys in zip(info["ignore_regions_x"], info["ignore_regions_y"])]
        frames.append({"image": [{"name": info["file_name"]}], "annorect": rects, "ignore_regions": regions,
                       "is_labeled": [1], "imgnum": [1]})
    return {"annolist": frames}


def test_posetrack17_format_gives_the_same_people(shared_data, tmp_path):
    root = shared_data / "mmpose_fixtures" / "posetrack18"
    for f in sorted((root / "annotations" / "val").glob("*.json")):
        (tmp_path / f.name).write_text(json.dumps(_to_posetrack17(json.loads(f.read_text()))))
    old, new = load_posetrack(tmp_path, root), load_posetrack(root / "annotations" / "val", root)
    assert [im.path for im in old] == [im.path for im in new]
    for a, b in zip(old, new):
        np.testing.assert_array_equal(a.keypoints[..., 2] > 0, b.keypoints[..., 2] > 0)
        np.testing.assert_allclose(a.keypoints[..., :2], b.keypoints[..., :2], atol=1e-3)
        assert len(a.ignore) == len([r for r in b.ignore if r.get("iscrowd")])


def test_mixed_dataset_weights_and_sizes(shared_data):
    coco = shared_data / "coco8_pose"
    mpii = shared_data / "mmpose_fixtures" / "mpii"
    dataset = build_dataset([DataSpec.parse(f"coco:{coco}/person_keypoints_train.json:{coco}"),
                             DataSpec.parse(f"mpii:{mpii}/test_mpii.json:{mpii}:2")])
    assert dataset.weights == [1.0, 2.0]
    assert len(dataset) == sum(dataset.sizes)
    mpii_part, local = dataset.locate(dataset.sizes[0])
    assert mpii_part.name == "mpii" and local == 0
    sample = dataset.sample(dataset.sizes[0], seed=3)
    assert sample.heatmap_weight[NETWORK.index["nose"]] == 0 and sample.heatmap_weight[NETWORK.index["neck"]] == 1


@pytest.mark.parametrize("text, problem", [
    ("coco:a.json", "expected KIND:ANNOTATIONS:IMAGES"),
    ("lsp:a.json:imgs", "unknown dataset kind 'lsp'"),
    ("coco:a.json:imgs:heavy", "weight 'heavy' is not a number"),
])
def test_data_spec_errors_are_one_line(text, problem):
    with pytest.raises(ValueError, match=problem):
        DataSpec.parse(text)


def test_bad_files_name_the_file(shared_data, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="broken.json: not valid JSON"):
        load_coco(broken, tmp_path)
    coco = shared_data / "coco8_pose"
    with pytest.raises(InputError, match=r"000000000036\.jpg: image listed in .* not found \(and 3 more\)"):
        load_coco(coco / "person_keypoints_train.json", tmp_path)
    (tmp_path / "list.json").write_text(json.dumps([{"image": "a.jpg"}]))
    with pytest.raises(InputError, match="record 0 lacks joints"):
        load_mpii(tmp_path / "list.json", tmp_path)
    (tmp_path / "other.json").write_text(json.dumps({"videos": []}))
    with pytest.raises(InputError, match="other.json: not a PoseTrack annotation file"):
        load_posetrack(tmp_path / "other.json", tmp_path)


def test_mpii_training_and_evaluation_read_one_parser(shared_data, tmp_path):
    """The json list is parsed once (ftpose.data.mpii.read_mpii_json); a NaN refuses both uses."""
    import json

    from ftpose.data.mpii import load_mpii
    from ftpose.evaluation import mpii as mpii_eval

    root = shared_data / "mmpose_fixtures" / "mpii"
    records = json.loads((root / "test_mpii.json").read_text())
    people = sum(len(r.keypoints) for r in load_mpii(root / "test_mpii.json", root))
    assert people == len(records) == sum(len(g.keypoints) for g in mpii_eval.load_ground_truth(root / "test_mpii.json"))
    records[1]["scale"] = float("nan")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(records))
    for load in (lambda: load_mpii(bad, root), lambda: mpii_eval.load_ground_truth(bad)):
        with pytest.raises(InputError, match=r"record 1 \(.*\): 'scale' value 0 is nan"):
            load()


def test_posetrack_nan_keypoints_are_refused_by_training_and_evaluation(shared_data, tmp_path):
    import json

    from ftpose.evaluation import posetrack as posetrack_eval

    root = shared_data / "mmpose_fixtures" / "posetrack18"
    source = sorted((root / "annotations" / "val").glob("*.json"))[0]
    data = json.loads(source.read_text())
    annotation = next(a for a in data["annotations"] if any(a.get("keypoints") or []))
    annotation["keypoints"][0] = float("nan")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    for load in (lambda: load_posetrack(bad, root), lambda: posetrack_eval.load_ground_truth(bad)):
        with pytest.raises(InputError, match=rf"annotation {annotation['id']}: 'keypoints' value 0 is nan"):
            load()
