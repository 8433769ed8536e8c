"""Where a network comes from: one rule for every command and for the Predictor.

A *model source* is one of

- nothing (None): :func:`ftpose.models.default_model`, the most accurate model whose
  weights ship;
- a registered model name (``ftpose.list_models()``): its weights shipped as
  ``ftpose/assets/<name>.safetensors`` when there are some; otherwise the network keeps
  its random initialisation and is untrained, unless it is a ready-made network that says
  it is ``pretrained`` (``teacher``).  Model ``options`` build a variant, which the
  shipped weights do not fit, so a name with options is always freshly initialised;
- a weights file (``.safetensors``) or training checkpoint (``.pt``, ``.pth``, ``.ckpt``,
  or any other existing file): :func:`ftpose.models.load_model` rebuilds the model it names;
- a network file (``.xml`` OpenVINO IR, ``.onnx`` including ftpose's own exports, ``.pb``
  TensorFlow graph): run as a network by :func:`ftpose.models.foreign.load_network_file`;
- an ``nn.Module`` (the Predictor's callers): used as it is, taken to be trained.

:func:`resolve_model` turns a source into ``(network, trained)``; every error about a
source is raised here, as a one-line ``ValueError`` (a wrong name or combination) or
:class:`~ftpose.files.InputError` (a file that cannot be used).
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt")


def resolve_model(source, weights=None, options: dict | None = None) -> tuple[nn.Module, bool]:
    """The network a model source names and whether it carries trained weights.

    ``weights`` (a weights file or checkpoint) replaces the shipped weights of a name;
    the file names its own model, so ``source`` is then only the default name.
    ``options`` are model options for a registered name (``create_model(name, **options)``).
    A network file given as ``weights`` (``ftpose export``'s ``.onnx``) is run as the network.
    """
    from ftpose import models
    from ftpose.models.foreign import NETWORK_FILE_SUFFIXES, load_network_file

    options = dict(options or {})
    if source is None:
        source = models.default_model()
    if isinstance(source, nn.Module):
        if weights is not None or options:
            raise ValueError("pass either a model instance or weights to load, not both")
        return source, True
    if weights is not None:
        if options:
            raise ValueError("model options apply to a model name; a weights file records its own options")
        if is_file_source(source):
            raise ValueError(f"{source} carries its own weights; pass no weights with it")
        if Path(weights).suffix.lower() in NETWORK_FILE_SUFFIXES:   # an export (.onnx) given as weights
            return load_network_file(weights), True
        return models.load_model(weights), True
    if not is_file_source(source):
        return _registered(str(source), options)
    if options:
        raise ValueError("model options apply to a model name; a file records its own model")
    if Path(source).suffix.lower() in NETWORK_FILE_SUFFIXES:
        return load_network_file(source), True
    return models.load_model(source), True


def is_file_source(source) -> bool:
    """Whether ``source`` names a file (weights, checkpoint, network file) rather than a registered model."""
    from ftpose.models import list_models
    from ftpose.models.foreign import NETWORK_FILE_SUFFIXES

    text = str(source)
    if text in list_models():
        return False
    return Path(text).suffix.lower() in (*WEIGHTS_SUFFIXES, *NETWORK_FILE_SUFFIXES) or Path(text).is_file()


def untrained_message(source) -> str:
    """Why the network of ``source`` (a model name or the network itself) is untrained, in one line."""
    from ftpose.models import ASSETS

    name = source if isinstance(source, str) else getattr(source, "model_name", type(source).__name__)
    return (f"no trained weights for '{name}' (none given and {ASSETS / f'{name}.safetensors'} "
            "does not exist): the network is untrained and its output is meaningless; pass trained weights")


def _registered(name: str, options: dict) -> tuple[nn.Module, bool]:
    from ftpose import models

    shipped = models.shipped_weights(name)
    if not options and shipped is not None:
        return models.load_model(shipped), True
    network = models.create_model(name, **options)
    return network, bool(getattr(network, "pretrained", False))  # a ready-made network such as the teacher
