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
from pathlib import Path

import numpy as np
import torch

from ftpose.files import InputError, atomic_write

_NAME = re.compile(r"^checkpoint_(\d+)\.pt$")
BEST = "best.pt"


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
