"""The backend registry: backend name -> the arithmetic it runs in and the function that builds it.

Like the model registry (:mod:`ftpose.models.registry`), one table says what each name
means; :func:`create_backend` looks a name up and calls its factory.  The factories
live in :mod:`ftpose.export.backends` and are imported on first use, so the command
line can list :data:`BACKENDS` (and say which are int8) without loading torch.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: its ``name``, ``precision`` (``fp32``, ``bf16``, ``int8`` or ``fp16``;
    fp32 is the reference, the int8 ones share one calibration) and ``factory``, the name of a
    function of :mod:`ftpose.export.backends` called as ``factory(spec, network, device, threads,
    calibration)``."""

    name: str
    precision: str
    factory: str


_BACKENDS: dict[str, BackendSpec] = {}


def register_backend(name: str, precision: str, factory: str) -> None:
    """Make ``name`` a backend built by ``ftpose.export.backends.<factory>``."""
    if name in _BACKENDS:
        raise ValueError(f"backend name {name!r} is already registered")
    _BACKENDS[name] = BackendSpec(name, precision, factory)


register_backend("torch", "fp32", "torch_backend")
register_backend("torch-bf16", "bf16", "torch_backend")
register_backend("onnxruntime", "fp32", "onnxruntime_backend")
register_backend("onnxruntime-int8", "int8", "onnxruntime_backend")
register_backend("openvino", "fp32", "openvino_backend")
register_backend("openvino-bf16", "bf16", "openvino_backend")
register_backend("openvino-int8", "int8", "openvino_backend")
register_backend("tensorrt", "fp16", "tensorrt_backend")

BACKENDS = tuple(_BACKENDS)
"""Names accepted by :func:`create_backend` and ``--backend`` (see :mod:`ftpose.export.backends`)."""


def backend_spec(name: str) -> BackendSpec:
    """The registered backend ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    return _BACKENDS[name]


def create_backend(name: str, network, device="cpu", threads: int | None = None,
                   calibration: Sequence | None = None):
    """The backend ``name`` (one of :data:`BACKENDS`) running ``network``.

    ``calibration``: BGR uint8 photos for the int8 backends (default: the bundled
    sample photo; calibrate on photos like yours for best results).
    """
    import torch

    spec = backend_spec(name)
    factory = getattr(importlib.import_module("ftpose.export.backends"), spec.factory)
    return factory(spec, network, torch.device(device), threads, calibration)
