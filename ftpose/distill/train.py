"""``ftpose distill``'s training run: the training engine with the teacher's maps as targets.

Everything but the data and the objective is ``ftpose train``'s engine: config,
optimiser, schedule, deterministic resumable batches, checkpoints, logs, validation.
The distillation settings (:class:`~ftpose.distill.data.DistillConfig`) are kept in
``OUT/distill.toml`` so that ``--resume`` rebuilds the same data.
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import torch

from ftpose.data import MixedDataset
from ftpose.distill.data import DistillConfig, DistillDataset, UnlabeledImages, collect_unlabeled, paste_people
from ftpose.files import InputError
from ftpose.training.config import TrainConfig, dumps_toml
from ftpose.training.distributed import init_distributed, resolve_device, shutdown
from ftpose.training.engine import Trainer
from ftpose.training.loss import pose_loss

DISTILL_FILE = "distill.toml"
FRAMES_DIR = "frames"


def distill_loss(outputs, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Unmasked L2 to the teacher's maps on every cell and channel, plus the masked ground-truth L2.

    The ground-truth term is :func:`~ftpose.training.loss.pose_loss` as in training; its
    cell weight is zero for unlabeled and pasted crops and is scaled by
    ``ground_truth_weight``.
    """
    ones = torch.ones_like(batch["weight"])
    soft = {"heatmaps": batch["teacher_heatmaps"], "pafs": batch["teacher_pafs"], "weight": ones,
            "heatmap_weight": torch.ones_like(batch["heatmap_weight"]),
            "paf_weight": torch.ones_like(batch["paf_weight"])}
    teacher, teacher_parts = pose_loss(outputs, soft)
    truth, truth_parts = pose_loss(outputs, batch)
    parts = {f"teacher_{k}": v for k, v in teacher_parts.items()}
    parts.update({f"truth_{k}": v for k, v in truth_parts.items()})
    return teacher + truth, parts


class DistillTrainer(Trainer):
    """:class:`~ftpose.training.engine.Trainer` on a :class:`DistillDataset` with :func:`distill_loss`."""

    def __init__(self, config: TrainConfig, distill: DistillConfig, out_dir, context, device, resume=False,
                 progress=True):
        super().__init__(config, out_dir, context, device, resume=resume, progress=progress)
        self.distill = distill
        unlabeled = collect_unlabeled(distill.unlabeled, Path(out_dir) / FRAMES_DIR, distill.frame_step,
                                      distill.exclude)
        datasets, weights = list(self.dataset.datasets), list(self.dataset.weights)
        if unlabeled:
            datasets.append(UnlabeledImages(unlabeled, config.augment, distill.mosaic_probability))
            weights.append(distill.unlabeled_weight)
        people = paste_people([(s.annotations, s.images) for s in self.specs if s.kind == "coco"])
        self.dataset = DistillDataset(MixedDataset(datasets, weights), people, distill)
        if distill.freeze_imagenet:
            freeze_imagenet_layers(self.model)
        if distill.freeze:
            freeze_parameters(self.model, distill.freeze)
        if distill.zero_init_outputs and self.step == 0 and not config.init:  # trained weights keep their outputs
            zero_init_outputs(self.model)


    def loss(self, outputs, batch):
        return distill_loss(outputs, batch)

    def run(self) -> dict:
        if self.context.is_main:
            save_distill_config(self.distill, self.out_dir / DISTILL_FILE)
        return super().run()


def zero_init_outputs(model: torch.nn.Module) -> None:
    """Zero the convs that output heatmaps or PAFs, so that a fresh student starts predicting 0.

    The heads already start from small Gaussian weights (maps near zero,
    :func:`ftpose.models.vgg.init_head_conv`); zeroing the outputs makes the first
    maps exactly zero, so the first loss is the teacher's maps' own size.  Kept as an
    option because earlier runs (``distill.toml`` files) record it.
    """
    from ftpose.keypoints import NUM_HEATMAPS, NUM_PAFS

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.out_channels in (NUM_HEATMAPS, NUM_PAFS):
                module.weight.zero_()
                module.bias.zero_()


def freeze_imagenet_layers(model: torch.nn.Module) -> None:
    """Stop training the backbone's VGG layers (``conv1_1 … conv4_2``), which start from ImageNet.

    Their parameters then get no gradient, so the optimiser skips them and backward
    stops at the CPM layers: about 40% less compute per step for ``ftnet``.
    """
    from ftpose.models.vgg import VGG19_LAYERS

    for name, channels in VGG19_LAYERS:
        if channels is not None:
            getattr(model.backbone, name).requires_grad_(False)


def freeze_parameters(model: torch.nn.Module, prefixes: list[str]) -> None:
    """Stop training the parameters whose names start with one of ``prefixes`` (e.g. ``backbone``).

    A student that starts from trained weights (ftnet-light from Lightweight OpenPose)
    can keep its backbone: steps are cheaper and what it already knows stays intact.
    """
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            raise ValueError(f"--freeze {prefix}: no parameter of {type(model).__name__} starts with it")
    for name, parameter in model.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            parameter.requires_grad_(False)


def save_distill_config(config: DistillConfig, path: Path) -> None:
    from ftpose.files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        f.write(dumps_toml(dataclasses.asdict(config)))


def load_distill_config(path: Path | None, overrides: dict) -> DistillConfig:
    """The settings saved at ``path`` (when given and present) with ``overrides`` on top."""
    data = {}
    if path is not None and path.is_file():
        with open(path, "rb") as f:
            data = tomllib.load(f)
    data.update(overrides)
    try:
        return DistillConfig(**data)
    except (TypeError, ValueError) as e:
        raise InputError(path, f"bad distillation settings ({e})") from None


def distill(config: TrainConfig, settings: DistillConfig, out_dir, resume: bool = False,
            progress: bool = True) -> dict:
    """Train (or resume) a student in ``out_dir``; returns the last logged metrics row."""
    device = resolve_device(config.device)
    context = init_distributed(device)
    try:
        return DistillTrainer(config, settings, out_dir, context, device, resume=resume, progress=progress).run()
    finally:
        shutdown(context)
