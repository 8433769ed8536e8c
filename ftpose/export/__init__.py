"""Deployment: ONNX export verified against PyTorch, int8 calibration, inference backends.

:func:`ftpose.export.onnx.export_onnx` writes a network's final maps as an ONNX graph
(checked on real photos before the file is kept);
:func:`ftpose.export.quantize.quantize_int8` makes its int8 version;
:func:`create_backend` (the registry, :mod:`ftpose.export.registry`) runs a network with eager PyTorch, ONNX
Runtime or OpenVINO for the :class:`~ftpose.predictor.Predictor`.  Submodules are
imported on first use, so that the command line can list :data:`BACKENDS` without
loading torch.
"""
from ftpose.export.registry import BACKENDS, BackendSpec, backend_spec, create_backend, register_backend

__all__ = ["BACKENDS", "BackendSpec", "BackendUnavailableError", "ExportError", "backend_spec", "create_backend",
           "export_onnx", "quantize_int8", "register_backend", "verify_onnx"]


class BackendUnavailableError(RuntimeError):
    """A backend cannot run here (missing package, execution provider or device); the message says why."""


_LAZY = {"export_onnx": "onnx", "verify_onnx": "onnx", "ExportError": "onnx", "quantize_int8": "quantize"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"ftpose.export.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ftpose.export' has no attribute {name!r}")
