"""Training checkpoints: plain dicts written atomically, the last N kept, plus the best.

A checkpoint is ``torch.save`` of a dict with ``model`` (state dict), ``model_name``
and ``model_options`` (so :func:`ftpose.models.load_model` can rebuild the network
from it), and everything a resumed run needs: ``optimizer``, ``scheduler``,
``scaler``, ``step``, ``rng`` and the resolved ``config``.  Files are
``checkpoint_<step>.pt``; ``best.pt`` is the one with the highest validation AP.
"""
from __future__ import annotations

import random
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from ftpose.files import InputError, atomic_write

_NAME = re.compile(r"^checkpoint_(\d+)\.pt$")
BEST = "best.pt"


class CorruptCheckpointWarning(UserWarning):
    """The newest checkpoint could not be read; an older one is used instead."""


def checkpoint_path(out_dir, step: int) -> Path:
    return Path(out_dir) / f"checkpoint_{step:08d}.pt"


def list_checkpoints(out_dir) -> list[Path]:
    """Step checkpoints in ``out_dir``, oldest first."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(state: dict, path) -> None:
    """``torch.save`` through a temp file and rename: a crash never leaves a torn checkpoint."""
    with atomic_write(path) as f:
        torch.save(state, f)


def prune_checkpoints(out_dir, keep_last: int) -> None:
    for old in list_checkpoints(out_dir)[:-keep_last]:
        old.unlink(missing_ok=True)


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a training checkpoint, with a one-line :class:`InputError` when it is not one."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise InputError(path, "no such checkpoint") from None
    except Exception as e:  # torch raises many types for a corrupt file
        raise InputError(path, f"not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "model" not in state or "model_name" not in state:
        raise InputError(path, "not an ftpose training checkpoint (no model/model_name)")
    return state


def load_newest_checkpoint(out_dir, map_location="cpu", warn: bool = True) -> tuple[Path, dict]:
    """The newest readable checkpoint of a run and its path, skipping (with a warning)
    newer ones that cannot be read, e.g. after a disk filled up or a file was truncated."""
    found = list_checkpoints(out_dir)
    if not found:
        raise InputError(out_dir, "--resume given but the folder has no checkpoint_*.pt")
    first_error = None
    for path in reversed(found):
        try:
            state = load_checkpoint(path, map_location=map_location)
        except InputError as e:
            first_error = first_error or e
            continue
        if first_error is not None and warn:
            warnings.warn(CorruptCheckpointWarning(f"{first_error}; resuming from {path.name} instead"), stacklevel=2)
        return path, state
    raise first_error


def remove_stale_temp_files(out_dir) -> list[Path]:
    """Delete the temp files (``.NAME.*.tmp*``) that writes killed mid-way left in a run folder."""
    out_dir = Path(out_dir)
    stale = [p for folder in (out_dir, out_dir / "samples") if folder.is_dir()
             for p in folder.iterdir() if p.is_file() and p.name.startswith(".") and ".tmp" in p.name]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def rng_state() -> dict:
    """Every random generator the training process itself draws from, as plain types and
    tensors so that checkpoints load with ``torch.load(weights_only=True)``."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (kind, torch.from_numpy(key.astype(np.int64)), int(pos),
                                                    int(has_gauss), float(cached)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
