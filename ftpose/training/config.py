"""Every training setting in one typed tree, loaded from TOML with command-line overrides.

A config file mirrors the sections below (``[optim]``, ``[schedule]``, ...), optionally
on top of another (``extends = "coco.toml"``); keys it leaves out keep their defaults, unknown keys are an error (a typo must not silently
train with a default).  ``--set section.key=value`` overrides any single setting.
The defaults are the paper's (§4.3): SGD, lr 4e-5, momentum 0.9, weight decay 5e-4,
batch 28, 368x368 person-centric crops.
"""
from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftpose.data.augment import AugmentConfig
from ftpose.data.dataset import TargetConfig
from ftpose.files import InputError


@dataclass
class OptimConfig:
    name: str = "sgd"            # sgd | adam | adamw
    lr: float = 4e-5
    momentum: float = 0.9        # sgd only
    weight_decay: float = 5e-4
    bias_lr_factor: float = 2.0  # biases learn this much faster (Caffe's OpenPose: lr_mult 2, no decay)
    grad_clip: float = 0.0       # max gradient norm (clipped before the step); 0 disables

    def __post_init__(self):
        _check_choice("optim.name", self.name, ("sgd", "adam", "adamw"))
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be positive, got {self.lr}")
        if self.bias_lr_factor <= 0 or self.grad_clip < 0:
            raise ValueError("optim.bias_lr_factor must be positive and optim.grad_clip not negative, got "
                             f"{self.bias_lr_factor} and {self.grad_clip}")


@dataclass
class ScheduleConfig:
    name: str = "step"           # constant | step | cosine
    warmup_steps: int = 0        # linear ramp from warmup_start * lr
    warmup_start: float = 0.1
    milestones: list[int] = field(default_factory=list)  # step: multiply by gamma at each
    gamma: float = 0.333         # OpenPose's step factor
    min_lr_ratio: float = 0.0    # cosine: final lr / lr

    def __post_init__(self):
        _check_choice("schedule.name", self.name, ("constant", "step", "cosine"))


@dataclass
class TrainConfig:
    model: str = "ftnet"
    model_options: dict[str, Any] = field(default_factory=dict)
    init: str = ""                # start from these weights (.safetensors or checkpoint), e.g. COCO for PoseTrack
    data: list[str] = field(default_factory=list)      # KIND:ANNOTATIONS:IMAGES[:WEIGHT]
    val: str = ""                                      # coco:ANNOTATIONS:IMAGES for periodic COCO AP
    steps: int = 100_000          # optimiser steps; 0 trains nothing (e.g. only --dump-samples)
    batch_size: int = 28          # global: split evenly over the processes of a distributed run
    workers: int = 2              # data-loading processes per training process
    seed: int = 0
    device: str = "auto"          # auto | cpu | cuda | cuda:N
    precision: str = "auto"       # auto (bf16 on capable GPUs, else fp32) | fp32 | bf16 | fp16
    channels_last: str = "auto"   # auto (on GPU) | on | off
    deterministic: bool = False   # deterministic kernels (bitwise-reproducible on CPU)
    threads: int = 0              # torch intra-op threads per process; 0 = torch's default
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_last: int = 3
    val_every: int = 0            # steps; 0 = only at the end when val is set
    val_images: int = 0           # cap on validation images; 0 = all
    dump_samples: int = 0         # write this many augmented samples with targets, then train
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)

    def __post_init__(self):
        _check_choice("precision", self.precision, ("auto", "fp32", "bf16", "fp16"))
        _check_choice("channels_last", self.channels_last, ("auto", "on", "off"))
        if self.steps < 0:
            raise ValueError(f"steps must not be negative, got {self.steps}")
        for name in ("batch_size", "log_every", "checkpoint_every", "keep_last"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<config>") -> "TrainConfig":
        return _build(cls, data, source, "")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _build(cls, data: dict, source: str, prefix: str):
    if not isinstance(data, dict):
        raise InputError(source, f"[{prefix.rstrip('.')}] must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise InputError(source, f"unknown setting '{prefix}{key}' (known: {', '.join(sorted(fields))})")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            kwargs[key] = _build(kind, value, source, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, kind, source, prefix + key)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise InputError(source, str(e)) from None


_TRUE, _FALSE = ("true", "1", "on", "yes"), ("false", "0", "off", "no")


def _coerce(value, kind, source: str, name: str):
    """``value`` as the setting's type; strings (from the command line) are converted."""
    origin = typing.get_origin(kind) or kind
    try:
        if kind is bool:
            if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
                return value.lower() in _TRUE
            if isinstance(value, bool):
                return value
        elif kind in (int, float):
            if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                converted = kind(value)
                if kind is int and isinstance(value, float) and converted != value:
                    raise ValueError
                return converted
        elif kind is str:
            if isinstance(value, str):
                return value
        elif origin is list:
            (item,) = typing.get_args(kind)
            items = [v for v in value.split(",") if v] if isinstance(value, str) else value
            if isinstance(items, list):
                return [item(v) for v in items]
        elif origin is dict:
            if isinstance(value, dict):
                return value
    except ValueError:
        pass
    raise InputError(source, f"setting '{name}' expects {getattr(kind, '__name__', kind)}, got {value!r}")


def load_config(path=None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the TOML file at ``path`` (if any), then dotted ``overrides``.

    ``overrides`` maps ``"optim.lr"``-style names to values (strings are converted
    to the setting's type).
    """
    data: dict = {}
    source = "<command line>"
    if path is not None:
        source = str(path)
        data = _read_config_file(Path(path))
    for dotted, value in (overrides or {}).items():
        *sections, key = dotted.split(".")
        node = data
        for s in sections:
            node = node.setdefault(s, {})
            if not isinstance(node, dict):
                raise InputError(source, f"'{dotted}': {s} is not a section")
        node[key] = value
    return TrainConfig.from_dict(data, source)


def _read_config_file(path: Path, seen: tuple = ()) -> dict:
    """A TOML config; ``extends = "OTHER.toml"`` (relative to it) starts from OTHER's settings,
    which this file's override key by key (tables merged), so an ablation states only its change."""
    if path.resolve() in seen:
        raise InputError(path, "config 'extends' itself (a cycle)")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(path, "no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(path, f"not valid TOML ({e})") from None
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise InputError(path, f"'extends' must be a file name, got {base!r}")
    return _merged(_read_config_file(path.parent / base, (*seen, path.resolve())), data)


def _merged(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"optim.lr=1e-3"`` -> ``("optim.lr", "1e-3")``; TOML literals (lists, tables) are parsed."""
    if "=" not in text:
        raise ValueError(f"{text!r}: expected SECTION.KEY=VALUE")
    key, value = text.split("=", 1)
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare string
    return key.strip(), parsed


def command_line_overrides(assignments, options: dict[str, Any], data=()) -> dict[str, Any]:
    """Config overrides from ``--set KEY=VALUE`` texts, named options (``None`` = not given) and ``--data``.

    Raises ``ValueError`` for a malformed assignment.
    """
    overrides = dict(parse_assignment(text) for text in assignments)
    overrides.update({key: value for key, value in options.items() if value is not None})
    if data:
        overrides["data"] = list(data)
    return overrides


def save_config(config: TrainConfig, path: Path) -> None:
    """Write the resolved config as TOML next to the run's outputs."""
    from ftpose.files import atomic_write
    with atomic_write(path, "w") as f:
        f.write(dumps_toml(config.to_dict()))


def dumps_toml(data: dict, prefix: str = "") -> str:
    """A minimal TOML writer for the config tree (scalars, lists, nested tables)."""
    import json

    def literal(v):
        if v is None:  # model options: TOML has no null; the model registry reads "none" as None
            return '"none"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(literal(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {literal(x)}" for k, x in v.items()) + "}"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict) and key != "model_options":
            tables.append((key, value))
        else:
            lines.append(f"{key} = {literal(value)}")
    out = "\n".join(lines) + "\n"
    for key, value in tables:
        out += f"\n[{prefix}{key}]\n" + dumps_toml(value, f"{prefix}{key}.")
    return out
