"""The training engine end to end: memorisation through the real inference path, exact
resume after SIGKILL, two-process DDP equal to one process, the command line."""
from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ftpose.training.checkpoint import list_checkpoints, load_checkpoint
from ftpose.training.config import load_config
from ftpose.training.engine import LrSchedule

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "ftnet", "--set", "model_options={width_mult=0.125}", "--set", "augment.input_size=64",
        "--set", "deterministic=true", "--set", "threads=1", "--set", "log_every=1", "--quiet"]


def _coco8(shared_data) -> str:
    root = shared_data / "coco8_pose"
    return f"coco:{root / 'person_keypoints_train.json'}:{root}"


def _ftpose(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ftpose", "train", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, **kwargs)


def _losses(out: Path) -> list[float]:
    with open(out / "metrics.csv", newline="") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def test_schedules():
    warm_step = load_config(None, {"steps": 100, "schedule.warmup_steps": 10, "schedule.warmup_start": 0.1,
                                   "schedule.milestones": [50, 80], "schedule.gamma": 0.5})
    f = LrSchedule(warm_step)
    assert f(0) == pytest.approx(0.1) and f(5) == pytest.approx(0.55) and f(10) == 1.0
    assert f(49) == 1.0 and f(50) == 0.5 and f(80) == 0.25
    cosine = LrSchedule(load_config(None, {"steps": 100, "schedule.name": "cosine", "schedule.min_lr_ratio": 0.1}))
    assert cosine(0) == 1.0 and cosine(50) == pytest.approx(0.55) and cosine(100) == pytest.approx(0.1)


@pytest.mark.slow
def test_memorising_real_images_reaches_coco_ap(shared_data, tmp_path):
    """Over-fit a narrow ftnet on 2 real photos, then find those people again through the
    normal Predictor + pycocotools path: fails if targets, crops, loss and decoding disagree."""
    from ftpose.evaluation.coco import evaluate_coco
    from ftpose.files import read_image
    from ftpose.models import load_model
    from ftpose.predictor import Predictor
    from ftpose.training.engine import train

    root = shared_data / "coco8_pose"
    data = json.loads((root / "person_keypoints_train.json").read_text())
    keep = {36, 86}   # one large person each
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    annotations = tmp_path / "two.json"
    annotations.write_text(json.dumps(data))

    config = load_config(ROOT / "configs" / "memorize.toml", {"data": [f"coco:{annotations}:{root}"]})
    train(config, tmp_path / "run", progress=False)
    model = load_model(list_checkpoints(tmp_path / "run")[-1])
    predictor = Predictor(model, input_height=config.augment.input_size)
    results = []
    for image in data["images"]:
        results += predictor.predict(read_image(root / image["file_name"])).coco_results(image["id"])
    metrics = evaluate_coco(annotations, results)
    assert metrics["AP"] >= 0.5, metrics


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the loader processes through /proc")
def test_sigkill_then_resume_gives_bitwise_the_same_weights(shared_data, tmp_path):
    args = [*TINY, "--data", _coco8(shared_data), "--steps", 12, "--batch-size", 2, "--workers", 1,
            "--set", "checkpoint_every=2", "--set", "keep_last=2"]
    straight = _ftpose(*args, "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr

    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "ftpose", "train", *map(str, args), "--out", str(out)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list_checkpoints(out) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        loaders = _descendants(process.pid)   # the forkserver and its loader process
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    deadline = time.monotonic() + 60
    while any(_running(pid) for pid in loaders) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert loaders and not [pid for pid in loaders if _running(pid)], "loader processes outlived the killed trainer"
    killed_at = [int(p.stem.split("_")[1]) for p in list_checkpoints(out)]
    assert killed_at and max(killed_at) < 12, f"the run was not killed mid-way (checkpoints {killed_at})"

    resumed = _ftpose(*args, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = load_checkpoint(list_checkpoints(tmp_path / "straight")[-1])
    b = load_checkpoint(list_checkpoints(out)[-1])
    assert a["step"] == b["step"] == 12
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert _losses(tmp_path / "straight") == _losses(out)   # the log was cut back and continued


def _descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _running(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_two_process_ddp_matches_one_process(shared_data, tmp_path):
    args = [*TINY, "--data", _coco8(shared_data), "--steps", 4, "--batch-size", 4, "--workers", 0,
            "--set", "optim.name=adam", "--lr", "1e-3"]
    single = _ftpose(*args, "--out", tmp_path / "single")
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "ftpose", "train", *map(str, args), "--out", str(tmp_path / "ddp")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("checkpoints in") == 1, ddp.stdout   # only rank 0 reports
    one, two = _losses(tmp_path / "single"), _losses(tmp_path / "ddp")
    assert len(one) == len(two) == 4
    for x, y in zip(one, two):
        assert math.isclose(x, y, rel_tol=1e-4), (one, two)
    a = load_checkpoint(list_checkpoints(tmp_path / "single")[-1])["model"]
    b = load_checkpoint(list_checkpoints(tmp_path / "ddp")[-1])["model"]
    for name in a:  # Adam turns tiny gradient differences near zero into steps of up to lr (1e-3)
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=2e-4)


def test_dump_samples_and_checkpoint_loads_as_a_model(shared_data, tmp_path):
    from ftpose.models import load_model

    out = tmp_path / "run"
    result = _ftpose(*TINY, "--data", _coco8(shared_data), "--steps", 1, "--batch-size", 1, "--workers", 0,
                     "--dump-samples", 3, "--out", out)
    assert result.returncode == 0, result.stderr
    import cv2
    samples = sorted((out / "samples").glob("*.jpg"))
    assert len(samples) == 3 and cv2.imread(str(samples[0])).shape == (64, 3 * 64, 3)
    model = load_model(list_checkpoints(out)[-1])
    assert model.model_name == "ftnet" and model.model_options["width_mult"] == 0.125

    wider = _ftpose(*TINY, "--data", _coco8(shared_data), "--steps", 1, "--batch-size", 1, "--workers", 0,
                    "--init", list_checkpoints(out)[-1], "--set", "model_options={width_mult=0.25}",
                    "--out", tmp_path / "wider")
    assert wider.returncode != 0 and "init weights do not fit ftnet" in wider.stderr


@pytest.mark.parametrize("args, message", [
    (["--data", "lsp:a.json:imgs"], "unknown dataset kind 'lsp'"),
    (["--data", "coco:missing.json:."], "missing.json: no such file"),
    (["--set", "optim.lr=fast"], "setting 'optim.lr' expects float"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    result = _ftpose("--out", tmp_path / "run", *args)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_without_checkpoint_and_overwriting_a_run_are_errors(shared_data, tmp_path):
    result = _ftpose(*TINY, "--data", _coco8(shared_data), "--out", tmp_path / "empty", "--resume")
    assert result.returncode != 0 and "has no checkpoint" in result.stderr
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "checkpoint_00000010.pt").write_bytes(b"")
    result = _ftpose(*TINY, "--data", _coco8(shared_data), "--out", tmp_path / "old")
    assert result.returncode != 0 and "already holds a run" in result.stderr


def test_resume_skips_a_corrupt_newest_checkpoint_and_stale_temp_files_go(shared_data, tmp_path):
    out = tmp_path / "run"
    args = [*TINY, "--data", _coco8(shared_data), "--batch-size", 1, "--workers", 0, "--set", "checkpoint_every=2",
            "--out", out]
    assert _ftpose(*args, "--steps", 4).returncode == 0
    newest = list_checkpoints(out)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])          # a write cut short by a full disk
    stale = out / ".checkpoint_00000006.x1y2z3.tmp.pt"      # what atomic_write leaves when killed mid-write
    stale.write_bytes(b"partial")
    resumed = _ftpose(*args, "--steps", 6, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"warning: {newest}: not a readable checkpoint" in resumed.stderr
    assert "resuming from checkpoint_00000002.pt instead" in resumed.stderr
    assert not stale.exists()
    assert load_checkpoint(list_checkpoints(out)[-1])["step"] == 6
    assert [int(r) for r in _steps(out)] == [1, 2, 3, 4, 5, 6]   # the log was cut back to step 2 and continued


def _steps(out: Path) -> list[str]:
    with open(out / "metrics.csv", newline="") as f:
        return [row["step"] for row in csv.DictReader(f)]
