"""Training that converges with the paper's recipe and stops at the first non-finite number.

The cause of the paper recipe's divergence was the heads' initialisation (He-normal
heads gave first maps near 1 on random features and in the tens on ImageNet ones; the
first SGD steps then overshot to inf).  These tests check the cause (fresh heads output
near-zero maps on a real photo), the effect (30 steps of the paper's config on real
COCO images give a finite, decreasing loss) and the guard (a non-finite loss stops the
run, names the step and the images, and leaves only finite checkpoints).
"""
from __future__ import annotations

import csv
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from ftpose.files import read_image
from ftpose.models import create_model, load_model
from ftpose.network_input import network_batch
from ftpose.training.checkpoint import list_checkpoints
from ftpose.training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "ftpose" / "assets" / "000000000790.jpg"


def _coco8(shared_data) -> list[str]:
    root = shared_data / "coco8_pose"
    return [f"coco:{root / 'person_keypoints_train.json'}:{root}"]


def _losses(out: Path) -> list[float]:
    with open(out / "metrics.csv", newline="") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def _paper_config(shared_data, **model_options):
    """configs/coco.toml (SGD 4e-5, momentum 0.9, decay 5e-4, its warm-up) at a CPU-sized scale."""
    return load_config(ROOT / "configs" / "coco.toml", {
        "model_options": {"width_mult": 0.125, **model_options}, "augment.input_size": 128, "steps": 30,
        "batch_size": 2, "workers": 0, "threads": 2, "log_every": 1, "checkpoint_every": 10,
        "data": _coco8(shared_data)})


@pytest.mark.parametrize("name", ["ftnet", "openpose", "ftnet-light"])
def test_fresh_heads_output_near_zero_maps_on_a_real_photo(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    image = read_image(PHOTO)[:128, :128]
    x = torch.from_numpy(network_batch([image]))
    with torch.no_grad():
        outputs = model(x)
    for stage, (heatmaps, pafs) in enumerate(outputs):
        assert heatmaps.abs().max() < 0.05 and pafs.abs().max() < 0.05, (stage, heatmaps.abs().max(), pafs.abs().max())


@pytest.mark.slow
@pytest.mark.parametrize("transfer_from", ["conv4", "none"])
def test_paper_recipe_trains_30_steps_with_a_finite_falling_loss(shared_data, tmp_path, transfer_from):
    from ftpose.training.engine import train

    config = _paper_config(shared_data, transfer_from=transfer_from)
    assert config.optim.name == "sgd" and config.optim.lr == 4e-5 and config.optim.weight_decay == 5e-4
    train(config, tmp_path / "run", progress=False)
    losses = _losses(tmp_path / "run")
    assert len(losses) == 30 and all(math.isfinite(v) for v in losses), losses
    assert np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10]), losses   # smoothed over 10 steps
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        norms = [float(row["grad_norm"]) for row in csv.DictReader(f)]
    assert all(math.isfinite(v) and v > 0 for v in norms)
    model = load_model(list_checkpoints(tmp_path / "run")[-1])
    assert model.model_options["transfer_from"] == (None if transfer_from == "none" else transfer_from)


def test_a_non_finite_loss_stops_the_run_and_keeps_only_finite_checkpoints(shared_data, tmp_path):
    from ftpose.training.distributed import DistributedContext
    from ftpose.training.engine import NonFiniteError, Trainer

    class LossTurnsNaN(Trainer):
        def loss(self, outputs, batch):
            loss, parts = super().loss(outputs, batch)
            return (loss * float("nan") if self.step == 4 else loss), parts

    config = _paper_config(shared_data)
    config.checkpoint_every = 2
    out = tmp_path / "run"
    trainer = LossTurnsNaN(config, out, DistributedContext(), torch.device("cpu"), progress=False)
    with pytest.raises(NonFiniteError) as error:
        trainer.run()
    message = str(error.value)
    assert "\n" not in message and message.startswith("step 5: non-finite loss nan")
    assert "images/train/" in message and "checkpoint_00000004.pt" in message, message
    steps = [int(p.stem.split("_")[1]) for p in list_checkpoints(out)]
    assert steps == [2, 4]
    for path in list_checkpoints(out):
        for name, tensor in torch.load(path, weights_only=True)["model"].items():
            assert torch.isfinite(tensor).all(), (path, name)


def test_a_diverging_learning_rate_exits_1_with_one_line(shared_data, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ftpose", "train", "--model", "ftnet", "--set", "model_options={width_mult=0.125}",
         "--set", "augment.input_size=64", "--set", "threads=1", "--quiet", "--data", *_coco8(shared_data),
         "--steps", "20", "--batch-size", "1", "--workers", "0", "--lr", "1e6", "--set", "checkpoint_every=1",
         "--out", str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "non-finite" in lines[0] and "Traceback" not in result.stderr, result.stderr
    for path in list_checkpoints(tmp_path / "run"):
        assert all(torch.isfinite(t).all() for t in torch.load(path, weights_only=True)["model"].values())


def test_none_is_one_spelling_for_every_entry_point(tmp_path):
    from ftpose.models import parse_options, save_weights
    from ftpose.training.config import dumps_toml, parse_assignment

    assert parse_options(["transfer_from=none"]) == {"transfer_from": None}
    key, value = parse_assignment("model_options.transfer_from=none")  # train/distill --set
    assert create_model("ftnet", width_mult=0.125, **{key.split(".")[1]: value}).transfer is None
    model = create_model("ftnet", width_mult=0.125, transfer_from="none")  # TOML configs: "none"
    assert model.model_options["transfer_from"] is None
    assert tomllib.loads(dumps_toml({"model_options": {"transfer_from": None}})) == {
        "model_options": {"transfer_from": "none"}}  # a run's saved config.toml
    save_weights(model, tmp_path / "w.safetensors")  # --weights metadata: JSON null
    assert load_model(tmp_path / "w.safetensors").model_options["transfer_from"] is None
    with pytest.raises(ValueError, match="or none, got 'null'"):
        create_model("ftnet", transfer_from="null")
