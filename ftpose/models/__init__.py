"""Networks: the registry, saving released weights and loading weights or checkpoints.

``create_model("ftnet")`` builds the paper's network, ``create_model("openpose")`` the
PAF baseline; ``list_models()`` names them all.  Released weights are safetensors files
whose metadata says how to rebuild the model (``{"model": name, "options": json}``);
:func:`load_model` also reads training checkpoints (a ``torch.save`` of a dict with
``model``, ``model_name`` and ``model_options``).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ftpose.files import InputError, atomic_write
from ftpose.models import foreign as _foreign, ftnet as _ftnet, ftnet_light as _ftnet_light, openpose as _openpose  # noqa: F401,E501  (registers the models)
from ftpose.models.registry import create_model, list_models, parse_options, register_model

__all__ = ["create_model", "default_model", "list_models", "load_model", "parse_options", "register_model",
           "save_weights", "shipped_weights", "without_transfer"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""Where trained weights ship: ``ftpose/assets/<model name>.safetensors``."""

MOST_ACCURATE_FIRST = ("ftnet", "ftnet-light")
"""Models whose weights may ship, by held-out AP (docs/MODEL_CARD.md), the best first."""


def shipped_weights(name: str) -> Path | None:
    """The trained weights that ship with ftpose for model ``name``, if any."""
    path = ASSETS / f"{name}.safetensors"
    return path if path.is_file() else None


def default_model() -> str:
    """The model used when none is named: the most accurate one whose weights ship.

    ``ftnet-light`` today; ``ftnet`` (the paper's network) once its distilled weights
    ship.  Falls back to ``ftnet`` (untrained, with a warning) in a tree without assets.
    """
    return next((name for name in MOST_ACCURATE_FIRST if shipped_weights(name)), "ftnet")

_SAFETENSORS_MAGIC_OFFSET = 8  # a safetensors file starts with an 8-byte header length, then '{'


def save_weights(model: nn.Module, path) -> None:
    """Write ``model``'s weights as safetensors with the metadata :func:`load_model` needs.

    ``pretrained_backbone`` is stored as False: the saved weights already contain it.
    """
    from safetensors.torch import save

    name, options = _identity(model)
    options = {**options, "pretrained_backbone": False} if "pretrained_backbone" in options else options
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(path) as f:
        f.write(save(state, metadata={"model": name, "options": json.dumps(options)}))


def load_model(path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from a safetensors weights file or a training checkpoint, in eval mode.

    Every problem with the file (missing, not a weights file, unknown model, weights
    that do not fit) raises :class:`ftpose.files.InputError` naming it.  The model is
    built on the meta device and takes the file's tensors as they are, so metadata that
    does not match them (``width_mult=40`` beside width-1 weights) is refused before any
    memory is spent on it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file" if not path.exists() else "is not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(_SAFETENSORS_MAGIC_OFFSET + 1)
    except OSError as e:
        raise InputError(path, f"cannot be read ({e.strerror or e})") from None
    if head[-1:] == b"{" or path.suffix.lower() == ".safetensors":
        name, options, state = _read_safetensors(path)
    else:
        name, options, state = _read_checkpoint(path)
    if "pretrained_backbone" in options:  # the stored weights replace any initialisation
        options["pretrained_backbone"] = False
    try:
        with torch.device("meta"):
            model = create_model(name, **options)
    except (ValueError, TypeError) as e:
        raise InputError(path, f"cannot rebuild model {name!r}: {e}") from None
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}   # shipped weights may be stored in fp16
    state = {k: v.to(dtypes[k]) if k in dtypes else v for k, v in state.items()}
    try:
        model.load_state_dict(state, assign=True)
    except RuntimeError as e:   # "Error(s) in loading state_dict for X:" then one line per problem
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        problem = (lines[1] if len(lines) > 1 else lines[0]).rstrip(": \t.")
        raise InputError(path, f"weights do not fit model {name!r} with options {options} ({problem})") from None
    return model.to(map_location).eval()


def without_transfer(model: nn.Module) -> nn.Module:
    """The same network and weights with the feature transfer removed (``transfer_from=None``).

    Transfer is *added* to a branch layer, so removing its blocks leaves every other layer
    and weight as it was (paper Table 8).  For ``ftnet-light`` started from Lightweight
    OpenPose with only the transfer trained (the shipped weights), this is exactly the
    network trained without transfer; for a network trained end to end with transfer it is
    an ablation of that network, not one trained without it.
    """
    name, options = _identity(model)
    if options.get("transfer_from", None) is None:
        raise ValueError(f"model {name!r} has no feature transfer to remove")
    options = {**options, "transfer_from": None}
    if "pretrained_backbone" in options:   # the weights are copied below; nothing to download
        options["pretrained_backbone"] = False
    reduced = create_model(name, **options)
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("transfer.")}
    reduced.load_state_dict(kept)
    return reduced.to(next(model.parameters()).device).eval()


def _identity(model: nn.Module) -> tuple[str, dict]:
    try:
        return model.model_name, dict(model.model_options)
    except AttributeError:
        raise ValueError("only models built with ftpose.create_model can be saved (they record their name "
                         "and options)") from None


def _read_safetensors(path: Path):
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(path, f"not a readable safetensors file ({e})") from None
    if "model" not in metadata:
        raise InputError(path, "safetensors file without ftpose metadata (no 'model' entry); "
                               "save weights with ftpose.models.save_weights")
    try:
        options = json.loads(metadata.get("options", "{}"))
    except json.JSONDecodeError as e:
        raise InputError(path, f"metadata 'options' is not valid JSON ({e.msg})") from None
    return metadata["model"], options, state


def _read_checkpoint(path: Path):
    import pickle

    from safetensors import SafetensorError   # torch.load reads safetensors files too

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, SafetensorError,
            IndexError, KeyError, TypeError, AttributeError, UnicodeDecodeError, MemoryError) as e:
        # a corrupt file can make the (weights-only) unpickler fail in any of these ways
        problem = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(path, f"neither a safetensors file nor a readable torch checkpoint ({problem})") from None
    missing = [k for k in ("model", "model_name") if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise InputError(path, f"torch file is not an ftpose checkpoint (missing {', '.join(missing)})")
    return checkpoint["model_name"], dict(checkpoint.get("model_options") or {}), checkpoint["model"]
