"""Outputs of ``ftpose predict`` stay inside ``--out``, never replace an input, and never lose results.

Each case is a batch with good photos beside the trap, so the test also checks that the
good inputs are still written; every input file is hashed before and after.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

import marker_network  # noqa: F401  (registers the test-marker model)
from ftpose.cli import main
from ftpose.files import SAMPLE_PHOTO, InputError
from ftpose.outputs import Outputs, check_writable, results_lock, unique_names
from ftpose.sources import expand_inputs


def predict(*args):
    return CliRunner().invoke(main, ["predict", "--model", "test-marker", "--threads", "1", *map(str, args)])


def hashes(folder: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def scans(tmp_path):
    """``photos/scan.jpg`` and ``photos/scan.PNG``: two photos whose overlays would both be ``scan.jpg``."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "scan.jpg").write_bytes(SAMPLE_PHOTO.read_bytes())
    assert cv2.imwrite(str(photos / "scan.PNG"), cv2.imread(str(SAMPLE_PHOTO))[:, ::-1])
    return photos


def test_two_inputs_with_one_stem_get_two_overlays(scans, tmp_path):
    before = hashes(scans)
    out = tmp_path / "out"
    result = predict(scans, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "photos").iterdir()) == ["scan.jpg", "scan_2.jpg"]
    meta = json.loads((out / "predictions.meta.json").read_text())
    assert sorted(m["file"] for m in meta["images"]) == sorted(str(p) for p in scans.iterdir())
    assert hashes(scans) == before


def test_an_output_that_would_land_on_an_input_is_refused(scans, tmp_path, monkeypatch):
    """The issue's case: ``ftpose predict photos --out .`` replaced scan.jpg with scan.PNG's overlay."""
    before = hashes(scans)
    monkeypatch.chdir(tmp_path)
    result = predict("photos", "--out", ".")
    assert result.exit_code == 1
    # scan.PNG sorts first and keeps the plain name, whose overlay photos/scan.jpg is an input
    assert errors(result) == ["error: photos/scan.PNG: its output photos/scan.jpg would overwrite the input "
                              "photos/scan.jpg; choose another --out"]
    assert "Traceback" not in result.output
    after = hashes(scans)
    assert {p: after[p] for p in before} == before               # scan.jpg untouched ...
    assert set(after) - set(before) == {scans / "scan_2.jpg"}    # ... and the other photo's overlay written
    assert cv2.imread(str(scans / "scan_2.jpg")) is not None


def test_a_parent_folder_argument_writes_inside_out(tmp_path, monkeypatch):
    """``ftpose predict .. --out X`` used to write to ``X/../``."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "x.jpg").write_bytes(SAMPLE_PHOTO.read_bytes())
    before = hashes(tmp_path)
    monkeypatch.chdir(tmp_path / "a" / "b")
    result = predict("..", "--out", "X")
    assert result.exit_code == 0, result.output
    written = set(hashes(tmp_path)) - set(before)
    out = tmp_path / "a" / "b" / "X"
    assert written == {out / "a" / "x.jpg", out / "predictions.json", out / "predictions.meta.json",
                       out / "predictions.jsonl", out / "predictions.manifest.json"}
    assert all(hashes(tmp_path)[p] == h for p, h in before.items())


def test_results_file_that_is_an_input_is_refused_before_the_compute(scans, tmp_path, monkeypatch):
    import ftpose.predictor

    monkeypatch.setattr(ftpose.predictor.Predictor, "__init__", lambda *a, **k: pytest.fail("network built"))
    before = hashes(scans)
    result = predict(scans, "--json", scans / "scan.jpg")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"Error: {scans / 'scan.jpg'}: is one of the inputs: writing " \
                                             "results there would destroy it"
    assert hashes(scans) == before


@pytest.mark.parametrize("where", ["under a file", "is a file"])
def test_an_output_folder_that_cannot_be_made_is_refused_before_the_compute(tmp_path, monkeypatch, where):
    import ftpose.predictor

    monkeypatch.setattr(ftpose.predictor.Predictor, "__init__", lambda *a, **k: pytest.fail("network built"))
    (tmp_path / "file").write_text("a file, not a folder")
    out = tmp_path / "file" / "sub" if where == "under a file" else tmp_path / "file"
    result = CliRunner().invoke(main, ["predict", str(SAMPLE_PHOTO), "--out", str(out)])
    assert result.exit_code in (1, 2)    # 2: click's own check that --out is not a file
    last = result.stderr.strip().splitlines()[-1]
    assert str(out) in last and ("a part of its path is a file" in last or "is a file" in last)
    assert "Traceback" not in result.output
    assert (tmp_path / "file").read_text() == "a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    with pytest.raises(InputError, match="cannot write outputs here"):
        check_writable(folder)


def test_a_run_where_everything_fails_keeps_the_previous_results(tmp_path):
    out = tmp_path / "out"
    assert predict(SAMPLE_PHOTO, "--out", out).exit_code == 0
    previous = hashes(out)
    broken = tmp_path / "broken.jpg"
    broken.write_text("not pixels")
    result = predict(broken, "--out", out)
    assert result.exit_code == 1
    assert errors(result) == [f"error: {broken}: not a readable image (unknown format or corrupt data)"]
    assert f"nothing to write, {out / 'predictions.json'} left as it was" in result.stderr
    assert hashes(out) == previous


def test_results_and_meta_are_one_pair(tmp_path):
    out = tmp_path / "out"
    assert predict(SAMPLE_PHOTO, "--out", out).exit_code == 0
    results = (out / "predictions.json").read_bytes()
    meta = json.loads((out / "predictions.meta.json").read_text())
    assert meta["results"] == "predictions.json" and len(json.loads(results)) == 2
    assert meta["results_sha256"] == hashlib.sha256(results).hexdigest()


def test_a_second_run_into_the_same_folder_is_refused_while_one_runs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.json").write_text("[]")
    with results_lock(out):
        result = predict(SAMPLE_PHOTO, "--out", out)
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines()[-1] == (
            f"Error: {out}: another run is writing these outputs (it holds {out / '.ftpose.lock'}); wait for it "
            "to finish or choose another --out / --json")
        assert (out / "predictions.json").read_text() == "[]"
        with pytest.raises(InputError, match="another run"):
            with results_lock(out):
                pass
    assert predict(SAMPLE_PHOTO, "--out", out).exit_code == 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]   # the lock is gone with the run


def test_unique_names_avoid_every_other_name_and_ignore_case():
    names = [Path(n) for n in ("p/scan.jpg", "p/SCAN.png", "p/scan_2.jpg", "p/scan.tif", "q/scan.jpg")]
    assert [str(n) for n in unique_names(names)] == ["p/scan.jpg", "p/SCAN_3.png", "p/scan_2.jpg", "p/scan_4.tif",
                                                      "q/scan.jpg"]


def test_outputs_never_leave_the_folder_or_touch_a_linked_input(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(SAMPLE_PHOTO.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    os.link(photo, out / "photo.jpg")    # the output's name is a hard link to the input
    sources, _ = expand_inputs([photo])
    outputs = Outputs(sources, out)
    with pytest.raises(InputError, match="would overwrite the input"):
        outputs.path(sources[0], ".jpg")
    assert outputs.path(sources[0], ".maps.npz") == out / "photo.maps.npz"
    escaping = type(sources[0])(photo, Path("../photo.jpg"))
    with pytest.raises(InputError, match="would leave the output folder"):
        outputs.path(escaping, ".png")


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_folder_run_keeps_every_finished_photo(tmp_path, signal_number):
    """Stopped after its first photo, a run over a folder of 300 leaves a consistent pair for what it finished."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(300):
        os.link(SAMPLE_PHOTO, photos / f"photo{index:03d}.jpg")
    before = hashes(photos)
    out = tmp_path / "out"
    code = ("import sys; import marker_network; from ftpose.cli import main; "
            f"main(['predict', {str(photos)!r}, '--model', 'test-marker', '--threads', '1', '--batch-size', '1', "
            f"'--out', {str(out)!r}])")
    tests = Path(__file__).resolve().parent
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])})
    journal = out / "predictions.jsonl"
    while process.poll() is None and not (journal.exists() and journal.read_text().count("\n") >= 1):
        time.sleep(0.05)
    process.send_signal(signal_number)
    stderr = process.communicate()[1]
    assert process.returncode == 130, stderr
    assert "interrupted: the results so far are in" in stderr and "Traceback" not in stderr
    data = (out / "predictions.json").read_bytes()
    meta = json.loads((out / "predictions.meta.json").read_text())
    assert meta["results_sha256"] == hashlib.sha256(data).hexdigest()
    finished = [Path(m["file"]) for m in meta["images"]]
    assert 1 <= len(finished) < 300
    assert sorted({r["image_id"] for r in json.loads(data)}) == sorted(m["image_id"] for m in meta["images"])
    for path in finished:
        assert cv2.imread(str(out / "photos" / path.name)) is not None
    assert hashes(photos) == before
