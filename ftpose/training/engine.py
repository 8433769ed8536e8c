"""The training loop: one process, or one of several under ``torchrun``.

Everything a run does is a function of its config and the step it starts at, which is
what makes ``--resume`` exact: the batches come from a deterministic
:class:`~ftpose.data.BatchStream`, each sample's augmentation from its own seed, and
the model, optimiser, schedule, gradient scaler and RNG states from the checkpoint.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import math
import os
import signal
import threading
import time
import types
from pathlib import Path

import cv2
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ftpose.data import BatchStream, DataSpec, build_dataset
from ftpose.data.preview import draw_sample
from ftpose.files import InputError, atomic_write, write_image
from ftpose.network_input import normalize
from ftpose.training.checkpoint import (BEST, checkpoint_path, list_checkpoints, load_newest_checkpoint,
                                        prune_checkpoints, remove_stale_temp_files, restore_rng_state, rng_state,
                                        save_checkpoint)
from ftpose.training.config import TrainConfig, save_config
from ftpose.training.distributed import (DistributedContext, all_reduce_mean, barrier, gather_objects,
                                         init_distributed, resolve_device, shutdown)
from ftpose.training.loss import pose_loss

METRICS_FILE = "metrics.csv"
VALIDATION_FILE = "validation.csv"
SAMPLES_DIR = "samples"


class LrSchedule:
    """Learning-rate factor per step: linear warm-up, then constant, step decay or cosine."""

    def __init__(self, config: TrainConfig):
        # plain values only: LambdaLR saves this object's __dict__ into checkpoints
        self.settings = dataclasses.asdict(config.schedule)
        self.steps = config.steps

    def __call__(self, step: int) -> float:
        s = types.SimpleNamespace(**self.settings)
        if step < s.warmup_steps:
            return s.warmup_start + (1 - s.warmup_start) * step / s.warmup_steps
        if s.name == "step":
            return s.gamma ** sum(step >= m for m in s.milestones)
        if s.name == "cosine":
            span = max(self.steps - s.warmup_steps, 1)
            progress = min((step - s.warmup_steps) / span, 1.0)
            return s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss, gradient or weight; ``str()`` is one line saying where."""


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimiser; biases (1-D parameters) get no weight decay and ``bias_lr_factor``
    times the learning rate, as in Caffe's OpenPose (the first group holds the weights)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    o = config.optim
    groups = [{"params": decay, "weight_decay": o.weight_decay},
              {"params": no_decay, "weight_decay": 0.0, "lr": o.lr * o.bias_lr_factor}]
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr)
    return torch.optim.AdamW(groups, lr=o.lr)


def _worker_context():
    """Start loader processes from a clean server process, not by forking this one: a fork
    copies OpenCV's thread pool mid-use (after --dump-samples or validation) and deadlocks."""
    import multiprocessing

    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else None


def _init_worker(trainer_pid: int, _worker_id: int) -> None:
    # each loader process is one of many: keep its libraries single-threaded
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    threading.Thread(target=_exit_with_trainer, args=(trainer_pid,), daemon=True, name="exit-with-trainer").start()


def _exit_with_trainer(trainer_pid: int) -> None:
    """End this loader process, and the forkserver that started it, once the trainer is gone.

    A loader process is the forkserver's child, not the trainer's, so nothing tells it
    when the trainer is killed (kill -9, OOM killer): measured, such processes lingered
    for minutes.  Polling once a second costs nothing; the forkserver only ever serves
    this trainer's loaders, so it goes too.
    """
    while _alive(trainer_pid):
        time.sleep(1.0)
    server = os.getppid()
    if server not in (1, trainer_pid):
        with contextlib.suppress(OSError):
            os.kill(server, signal.SIGTERM)
    os._exit(1)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a killed process whose parent has not reaped it yet does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def build_loader(dataset, stream: BatchStream, workers: int, pin_memory: bool = False,
                 seed: int = 0) -> torch.utils.data.DataLoader:
    """The training DataLoader: batches from ``stream``, built in ``workers`` processes."""
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=stream, num_workers=workers, worker_init_fn=functools.partial(_init_worker, os.getpid()),
        pin_memory=pin_memory,
        prefetch_factor=4 if workers else None, multiprocessing_context=_worker_context() if workers else None,
        generator=torch.Generator().manual_seed(seed))


class _CsvLog:
    """Append-only CSV, flushed every row; reopened on resume with rows past the resume step dropped."""

    def __init__(self, path: Path, columns: list[str], resume_step: int | None):
        self.path, self.columns = path, columns
        kept = []
        if resume_step is not None and path.is_file():
            with open(path, newline="") as f:
                kept = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with atomic_write(path, "w") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        self.file = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.file, columns, extrasaction="ignore")

    def write(self, row: dict) -> None:
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


class Trainer:
    """A configured run in ``out_dir``; :meth:`run` trains it to ``config.steps``."""

    def __init__(self, config: TrainConfig, out_dir, context: DistributedContext, device: torch.device,
                 resume: bool = False, progress: bool = True):
        from ftpose.models import create_model

        self.config, self.out_dir, self.context, self.device = config, Path(out_dir), context, device
        self.progress = progress and context.is_main
        if not config.data:
            raise ValueError("no training data: give at least one KIND:ANNOTATIONS:IMAGES")
        if config.batch_size % context.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by {context.world_size} processes")
        if config.threads:
            torch.set_num_threads(config.threads)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        self.specs = [DataSpec.parse(d) for d in config.data]
        self.dataset = build_dataset(self.specs, config.augment, config.targets)
        self.val_spec = DataSpec.parse(config.val) if config.val else None
        if self.val_spec is not None and self.val_spec.kind != "coco":
            raise ValueError(f"validation data must be coco:ANNOTATIONS:IMAGES, got {config.val!r}")

        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.model = create_model(config.model, **config.model_options).to(device)
        if config.init:
            self._load_initial_weights(config.init)
        # every option, defaults included, so load_model rebuilds it; the trained weights replace any init
        self.model_options = dict(self.model.model_options)
        if "pretrained_backbone" in self.model_options:
            self.model_options["pretrained_backbone"] = False
        self.precision = self._precision()
        self.channels_last = config.channels_last == "on" or (config.channels_last == "auto" and device.type == "cuda")
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, LrSchedule(config))
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == torch.float16)
        self.step = 0
        self.best_ap = -1.0
        # From here on each rank draws its own random numbers (none are used by the stock
        # models, but a dropout layer would need them to differ); a resume restores them.
        torch.manual_seed(config.seed + 1 + context.rank)
        if resume:
            self._resume()
        elif list_checkpoints(self.out_dir):
            raise InputError(self.out_dir, "already holds a run (checkpoint_*.pt): pass --resume to continue it "
                                           "or choose another --out")
        self.network = (DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
                        if context.enabled else self.model)

    def _load_initial_weights(self, path) -> None:
        from ftpose.models import load_model

        if Path(path).suffix.lower() == ".xml":  # a trained network in another layout, e.g. Lightweight OpenPose
            if not hasattr(self.model, "load_openvino_ir"):
                raise InputError(path, f"model {self.config.model!r} cannot start from an OpenVINO IR")
            self.model.load_openvino_ir(path)
            return
        source = load_model(path)
        if source.model_name != self.config.model:
            raise InputError(path, f"init weights are of model {source.model_name!r}, not {self.config.model!r}")
        try:
            self.model.load_state_dict(source.state_dict())
        except RuntimeError as e:
            raise InputError(path, f"init weights do not fit {self.config.model} with options "
                                   f"{self.config.model_options} ({str(e).splitlines()[0]})") from None

    def _precision(self) -> torch.dtype | None:
        p = self.config.precision
        if p == "auto":
            p = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        if p == "fp16" and self.device.type != "cuda":  # bf16 autocast also runs on CPUs (about 2x on AVX-512 BF16)
            raise ValueError(f"precision fp16 needs a GPU; use bf16 or fp32 on {self.device}")
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[p]

    def _resume(self) -> None:
        path, state = load_newest_checkpoint(self.out_dir, map_location=self.device, warn=self.context.is_main)
        if state["model_name"] != self.config.model:
            raise InputError(path, f"checkpoint is of model {state['model_name']!r}, not {self.config.model!r}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best_ap = float(state.get("best_ap", -1.0))
        if self.context.rank < len(state["rng"]):
            restore_rng_state(state["rng"][self.context.rank])

    # -- the loop -------------------------------------------------------------------

    def run(self) -> dict:
        """Train to ``config.steps``; returns the last logged metrics row (empty on ranks but 0)."""
        config, context = self.config, self.context
        resumed_at = self.step if self.step else None
        if context.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(self.out_dir)  # of writes a kill -9 cut short
            save_config(config, self.out_dir / "config.toml")
            if config.dump_samples and not resumed_at:
                self.dump_samples(config.dump_samples)
        stream = BatchStream(self.dataset.sizes, self.dataset.weights, config.batch_size, config.seed,
                             context.rank, context.world_size, start_step=self.step)
        loader = build_loader(self.dataset, stream, config.workers, self.device.type == "cuda",
                              config.seed + context.rank)
        logs = tensorboard = None
        if context.is_main:
            logs = (_CsvLog(self.out_dir / METRICS_FILE, ["step", "loss", "heatmap_loss", "paf_loss", "grad_norm",
                                                          "lr", "samples_per_s", "time"], resumed_at),
                    _CsvLog(self.out_dir / VALIDATION_FILE, ["step", "AP", "AP50", "AP75", "APM", "APL", "AR"],
                            resumed_at))
            tensorboard = _tensorboard(self.out_dir)
        bar = tqdm(total=config.steps, initial=self.step, disable=not self.progress, unit="step", dynamic_ncols=True)
        last = {}
        try:
            batches = iter(loader)
            window_start, window_steps, running = time.perf_counter(), 0, None
            self.network.train()
            while self.step < config.steps:
                values = self.train_step(next(batches))
                running = values if running is None else running + values
                window_steps += 1
                self.step += 1
                if self.step % config.log_every == 0 or self.step == config.steps:
                    mean = all_reduce_mean(running / window_steps, context).tolist()
                    elapsed = time.perf_counter() - window_start
                    last = {"step": self.step, "loss": mean[0], "heatmap_loss": mean[1], "paf_loss": mean[2],
                            "grad_norm": mean[3], "lr": self.optimizer.param_groups[0]["lr"],
                            "samples_per_s": window_steps * config.batch_size / max(elapsed, 1e-9),
                            "time": time.time()}
                    if context.is_main:
                        logs[0].write(last)
                        if tensorboard is not None:
                            for key in ("loss", "heatmap_loss", "paf_loss", "grad_norm", "lr", "samples_per_s"):
                                tensorboard.add_scalar(f"train/{key}", last[key], self.step)
                    bar.set_postfix(loss=f"{mean[0]:.4g}", grad=f"{mean[3]:.3g}", lr=f"{last['lr']:.3g}",
                                    samples_s=f"{last['samples_per_s']:.1f}")
                    window_start, window_steps, running = time.perf_counter(), 0, None
                bar.update(1)
                if self.val_spec is not None and self.step != config.steps and config.val_every \
                        and self.step % config.val_every == 0:
                    self.validate(logs, tensorboard)
                if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                    if self.step == config.steps and self.val_spec is not None:
                        self.validate(logs, tensorboard)
                    self.save()
        finally:
            bar.close()
            if logs:
                for log in logs:
                    log.close()
            if tensorboard is not None:
                tensorboard.close()
        return last if context.is_main else {}  # only rank 0 reports

    def train_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One optimiser step; returns ``[loss, heatmap loss, paf loss, gradient norm]`` (detached,
        losses summed over stages; the norm is before clipping).

        A non-finite loss or gradient raises :class:`NonFiniteError` before the weights
        change, so they and every checkpoint stay those of the last good step.  (With fp16
        the gradient scaler owns overflowing gradients: it skips such steps itself.)
        """
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        images = normalize(batch["image"])
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.precision, enabled=self.precision is not None):
            outputs = self.network(images)
        loss, parts = self.loss(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # a no-op unless fp16
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        clip = self.config.optim.grad_clip
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, clip) if clip > 0 else \
            torch.nn.utils.get_total_norm([p.grad for p in parameters])
        finite = torch.isfinite(loss) if self.scaler.is_enabled() else torch.isfinite(loss) & torch.isfinite(grad_norm)
        if not bool(finite):  # one scalar sync per step: the price of never stepping into NaN weights
            raise NonFiniteError(self._non_finite_message(float(loss.detach()), float(grad_norm)))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        heatmap = sum(v for k, v in parts.items() if k.endswith("heatmap"))
        paf = sum(v for k, v in parts.items() if k.endswith("paf"))
        return torch.stack([loss.detach(), heatmap, paf, grad_norm.detach()]).float()  # on the device: no sync

    def _non_finite_message(self, loss: float, grad_norm: float) -> str:
        step = self.step + 1
        what = f"loss {loss:g}" if not math.isfinite(loss) else f"gradient norm {grad_norm:g} (loss {loss:g})"
        images = self.batch_images(self.step)
        found = list_checkpoints(self.out_dir)
        kept = f"the last good checkpoint is {found[-1]}" if found else "no checkpoint was written"
        return (f"step {step}: non-finite {what}; batch images: {', '.join(map(str, images)) or 'unknown'}; "
                f"stopped, {kept} (check these annotations, or lower --lr / set optim.grad_clip)")

    def batch_images(self, step: int) -> list:
        """The image files of this process's batch at ``step`` (those the dataset can name)."""
        name = getattr(self.dataset, "image_path", None)
        if name is None:
            return []
        stream = BatchStream(self.dataset.sizes, self.dataset.weights, self.config.batch_size, self.config.seed,
                             self.context.rank, self.context.world_size)
        return [path for path in (name(index) for index, _ in stream.batch(step)) if path is not None]

    def loss(self, outputs, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training objective (:func:`pose_loss`); distillation adds the teacher's maps here."""
        return pose_loss(outputs, batch)

    # -- outputs --------------------------------------------------------------------

    def state(self, rng: list[dict]) -> dict:
        """The checkpoint dict; ``rng`` holds every rank's generator states (see :func:`gather_objects`)."""
        return {
            "model": self.model.state_dict(),
            "model_name": self.config.model,
            "model_options": self.model_options,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best_ap": self.best_ap,
            "rng": rng,
            "config": self.config.to_dict(),
        }

    def save(self) -> None:
        """Write this step's checkpoint (rank 0) and prune old ones; never one with non-finite weights."""
        bad = [name for name, value in self.model.state_dict().items()
               if value.is_floating_point() and not bool(torch.isfinite(value).all())]
        if bad:
            raise NonFiniteError(f"step {self.step}: {len(bad)} weight tensors are not finite (first {bad[0]}); "
                                 f"checkpoint not written")
        rng = gather_objects(rng_state(), self.context)
        if self.context.is_main:
            save_checkpoint(self.state(rng), checkpoint_path(self.out_dir, self.step))
            prune_checkpoints(self.out_dir, self.config.keep_last)
        barrier(self.context)

    def validate(self, logs, tensorboard) -> None:
        """COCO AP on the validation set (rank 0 computes; the others wait); keeps ``best.pt``."""
        rng = gather_objects(rng_state(), self.context)
        if self.context.is_main:
            from ftpose.training.validation import coco_validation

            metrics = coco_validation(self.model, self.val_spec.annotations, self.val_spec.images,
                                      self.device, self.config.val_images)
            logs[1].write({"step": self.step, **metrics})
            if tensorboard is not None:
                tensorboard.add_scalar("val/AP", metrics["AP"], self.step)
            tqdm.write(f"step {self.step}: validation AP {metrics['AP']:.3f}  AP50 {metrics['AP50']:.3f}")
            if metrics["AP"] > self.best_ap:
                self.best_ap = metrics["AP"]
                save_checkpoint(self.state(rng), self.out_dir / BEST)
        barrier(self.context)

    def dump_samples(self, count: int) -> None:
        """Write the run's first ``count`` augmented samples with their targets drawn over them."""
        stream = BatchStream(self.dataset.sizes, self.dataset.weights, 1, self.config.seed)
        for k, (index, seed) in zip(range(count), stream.positions(0)):
            sample = self.dataset.sample(index, seed)
            write_image(self.out_dir / SAMPLES_DIR / f"sample_{k:04d}.jpg", draw_sample(sample))


def train(config: TrainConfig, out_dir, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) a run in ``out_dir``; returns the last logged metrics row.

    Under ``torchrun`` every process calls this; they join one process group, split
    each global batch, and only rank 0 writes logs and checkpoints.
    """
    device = resolve_device(config.device)
    context = init_distributed(device)
    try:
        return Trainer(config, out_dir, context, device, resume=resume, progress=progress).run()
    finally:
        shutdown(context)
