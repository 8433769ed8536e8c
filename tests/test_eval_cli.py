"""``ftpose eval`` end to end on the real fixtures, with --results files."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import ftpose.predictor
from ftpose.cli import main
from ftpose.evaluation import mpii, posetrack
from ftpose.files import read_image
from ftpose.grouping import People
from ftpose.keypoints import COCO17, MPII16, NETWORK, POSETRACK17, convert


def run(*args):
    return CliRunner().invoke(main, ["eval", *map(str, args)])


@pytest.fixture()
def coco_results(shared_data, tmp_path):
    ann = shared_data / "mmpose_fixtures/coco/test_coco.json"
    data = json.loads(ann.read_text())
    records = []
    for a in data["annotations"]:
        if a["iscrowd"] or a["num_keypoints"] == 0:
            continue
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        kp[kp[:, 2] == 0] = 0
        records.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 1})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(records))
    return ann, path


def test_coco_results_table_json_markdown_and_analysis(coco_results, tmp_path):
    ann, results = coco_results
    out = tmp_path / "metrics.json"
    markdown = tmp_path / "report.md"
    result = run("--dataset", "coco", "--ann", ann, "--results", results, "--json", out, "--markdown", markdown,
                 "--analyze", tmp_path / "analysis")
    assert result.exit_code == 0, result.output
    assert "AP50" in result.output and "w/o Inversion" in result.output
    metrics = json.loads(out.read_text())
    assert {"AP", "AP50", "AP75", "APM", "APL", "AR"} <= set(metrics)
    assert all(v is None or 0 <= v <= 1 for v in metrics.values())
    assert metrics["AP"] == pytest.approx(1.0)
    report = markdown.read_text()
    assert "| results.json | 1.000 |" in report and "| OKS 0.75 | 1.000 |" in report
    assert (tmp_path / "analysis" / "error_analysis_oks75.png").is_file()


def test_mpii_and_posetrack_results(shared_data, tmp_path):
    mpii_gt = json.loads((shared_data / "mmpose_fixtures/mpii/test_mpii.json").read_text())
    records = []
    for r in mpii_gt:
        visible = np.asarray(r["joints_vis"])[:, None] > 0
        kp = np.where(visible, np.concatenate([np.asarray(r["joints"]), np.ones((16, 1))], 1), 0)
        records.append({"image": r["image"], "keypoints": kp.ravel().tolist(), "score": 0.8})
    results = tmp_path / "mpii.json"
    results.write_text(json.dumps(records))
    result = run("--dataset", "mpii", "--ann", shared_data / "mmpose_fixtures/mpii/test_mpii.json",
                 "--results", results, "--json", tmp_path / "mpii_metrics.json", "--markdown", "-")
    assert result.exit_code == 0, result.output
    assert "Shoulder" in result.output and "| mpii.json | 100.0 |" in result.output
    assert json.loads((tmp_path / "mpii_metrics.json").read_text())["mAP"] == pytest.approx(1.0)

    posetrack = shared_data / "mmpose_fixtures/posetrack18/annotations/val"
    submission = tmp_path / "posetrack"
    submission.mkdir()
    for file in posetrack.glob("*.json"):
        data = json.loads(file.read_text())
        for a in data["annotations"]:
            a["scores"] = [0.7] * 17
        (submission / file.name).write_text(json.dumps(data))
    result = run("--dataset", "posetrack", "--ann", posetrack, "--results", submission,
                 "--json", tmp_path / "pt.json")
    assert result.exit_code == 0, result.output
    assert "MOTA" in result.output
    metrics = json.loads((tmp_path / "pt.json").read_text())
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["MOTA"] == pytest.approx(1.0)


def test_bad_input_gives_one_line_error_naming_the_file(coco_results, tmp_path):
    ann, _ = coco_results
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 1, "keypoints": [0] * 51}]))
    result = run("--dataset", "coco", "--ann", ann, "--results", bad)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {bad}: record 0 lacks score"
    bad_ann = tmp_path / "ann.json"
    bad_ann.write_text(json.dumps({"images": []}))
    result = run("--dataset", "coco", "--ann", bad_ann, "--results", bad)
    assert result.exit_code == 1 and str(bad_ann) in result.output and "annotations" in result.output


@pytest.mark.parametrize("args, message", [
    ((), "give --model, --weights, --results or --oracle"),
    (("--oracle", "--results", "RESULTS"), "not --results and --oracle"),
    (("--model", "ftnet"), "needs --images"),
    (("--results", "RESULTS", "--flip"), "apply to --model/--weights only"),
])
def test_usage_errors(coco_results, args, message):
    ann, results = coco_results
    args = [str(results) if a == "RESULTS" else a for a in args]
    result = run("--dataset", "coco", "--ann", ann, *args)
    assert result.exit_code == 2 and message in result.output


def test_oracle_json_has_the_agreed_keys(shared_data, tmp_path):
    pytest.importorskip("ftpose.evaluation.oracle")
    out = tmp_path / "oracle.json"
    result = run("--dataset", "coco", "--ann", shared_data / "mmpose_fixtures/coco/test_coco.json", "--oracle",
                 "--json", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    for key in ("AP", "AP50", "AP75", "APM", "APL", "AR"):
        assert isinstance(metrics[key], float) and 0 <= metrics[key] <= 1


class GroundTruthPredictor:
    """Stands in for ``ftpose.Predictor``: returns the annotated people of each image.

    The images are read for real; this checks the model path of ``ftpose eval`` (file
    names, keys, the network layout's conversion to each protocol) without a network.
    """

    people_by_image: dict = {}
    backend = None

    def __init__(self, model, weights=None, device="cpu", scales=(1.0,), flip=False, batch_size=4, backend="torch",
                 calibration=None):
        assert scales == (1.0,) and not flip

    def predict_batch(self, images):
        return [self._people(self.people_by_image[_fingerprint(image)]) for image in images]

    @staticmethod
    def _people(keypoints):
        return People(keypoints.astype(np.float32), np.linspace(1, 0.5, len(keypoints)).astype(np.float32))


def _fingerprint(image) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()


def _network_people(keypoints, layout):
    kp = convert(np.asarray(keypoints, np.float64), layout, NETWORK)
    kp[..., 2] = np.where(kp[..., 2] > 0, 1.0, 0.0)
    kp[kp[..., 2] == 0] = 0
    return kp


def test_model_path_scores_what_the_predictor_returns(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(ftpose.predictor, "Predictor", GroundTruthPredictor)
    people = {}
    monkeypatch.setattr(GroundTruthPredictor, "people_by_image", people)

    def key(path):
        return _fingerprint(read_image(path))

    coco_dir = shared_data / "mmpose_fixtures/coco"
    data = json.loads((coco_dir / "test_coco.json").read_text())
    for image in data["images"]:
        anns = [a["keypoints"] for a in data["annotations"]
                if a["image_id"] == image["id"] and a["num_keypoints"] > 0 and not a["iscrowd"]]
        people[key(coco_dir / image["file_name"])] = _network_people(np.reshape(anns, (-1, 17, 3)), COCO17)
    saved = tmp_path / "coco_results.json"
    result = run("--dataset", "coco", "--ann", coco_dir / "test_coco.json", "--images", coco_dir, "--model", "x",
                 "--json", tmp_path / "coco.json", "--save-results", saved)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "coco.json").read_text())["AP"] == pytest.approx(1.0)
    rescored = run("--dataset", "coco", "--ann", coco_dir / "test_coco.json", "--results", saved,
                   "--json", tmp_path / "again.json")
    assert rescored.exit_code == 0
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads((tmp_path / "coco.json").read_text())

    mpii_dir = shared_data / "mmpose_fixtures/mpii"
    for image in mpii.load_ground_truth(mpii_dir / "test_mpii.json"):
        people[key(mpii_dir / image.image)] = _network_people(image.keypoints, MPII16)
    result = run("--dataset", "mpii", "--ann", mpii_dir / "test_mpii.json", "--images", mpii_dir, "--model", "x",
                 "--json", tmp_path / "mpii.json")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "mpii.json").read_text())
    assert metrics["Head"] is None and metrics["mAP"] == pytest.approx(1.0)

    root = shared_data / "mmpose_fixtures/posetrack18"
    for sequence in posetrack.load_ground_truth(root / "annotations/val"):
        for frame in sequence.frames:
            people[key(root / frame.image)] = _network_people(frame.keypoints, POSETRACK17)
    result = run("--dataset", "posetrack", "--ann", root / "annotations/val", "--images", root, "--model", "x",
                 "--json", tmp_path / "posetrack.json")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "posetrack.json").read_text())
    assert metrics["AP/head_top"] is None and metrics["Head"] == pytest.approx(1.0)  # the nose alone
    assert metrics["mAP"] == pytest.approx(1.0) and "MOTA" not in metrics


def test_unreadable_image_is_reported_and_exit_code_is_one(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(ftpose.predictor, "Predictor", GroundTruthPredictor)
    images = tmp_path / "images"
    shutil.copytree(shared_data / "mmpose_fixtures/mpii", images)
    first = json.loads((images / "test_mpii.json").read_text())[0]["image"]
    (images / first).write_bytes(b"")
    people = {}
    monkeypatch.setattr(GroundTruthPredictor, "people_by_image", people)
    for image in mpii.load_ground_truth(images / "test_mpii.json"):
        if image.image != first:
            people[_fingerprint(read_image(images / image.image))] = _network_people(image.keypoints, MPII16)
    result = run("--dataset", "mpii", "--ann", images / "test_mpii.json", "--images", images, "--model", "x")
    assert result.exit_code == 1
    assert f"{images / first}: is empty (0 bytes)" in result.output
    assert "1 image(s) could not be read" in result.output


def test_oracle_on_mpii_and_posetrack_leaves_out_joints_the_network_lacks(shared_data, tmp_path):
    pytest.importorskip("ftpose.evaluation.oracle")
    for dataset, ann, missing in (("mpii", "mpii/test_mpii.json", "upper_neck, head_top"),
                                  ("posetrack", "posetrack18/annotations/val", "head_bottom, head_top")):
        out = tmp_path / f"{dataset}.json"
        result = run("--dataset", dataset, "--ann", shared_data / "mmpose_fixtures" / ann, "--oracle", "--json", out)
        assert result.exit_code == 0, result.output
        assert f"left out of the columns and mAP: {missing}" in result.output
        metrics = json.loads(out.read_text())
        # single, well separated people: perfect maps decode to people within PCKh 0.5
        assert metrics["mAP"] == pytest.approx(1.0)
        assert (metrics["Head"] is None) == (dataset == "mpii")
