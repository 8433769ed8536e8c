"""Deployment: ONNX export verified against PyTorch, int8 calibration, inference backends.

:func:`ftpose.export.onnx.export_onnx` writes a network's final maps as an ONNX graph
(checked on real photos before the file is kept);
:func:`ftpose.export.quantize.quantize_int8` makes its int8 version;
:func:`ftpose.export.backends.create_backend` runs a network with eager PyTorch, ONNX
Runtime or OpenVINO for the :class:`~ftpose.predictor.Predictor`.  Submodules are
imported on first use, so that the command line can list :data:`BACKENDS` without
loading torch.
"""
PRECISION = {"torch": "fp32", "torch-bf16": "bf16", "onnxruntime": "fp32", "onnxruntime-int8": "int8",
             "openvino": "fp32", "openvino-bf16": "bf16", "openvino-int8": "int8", "tensorrt": "fp16"}
"""The arithmetic each backend runs the network in; fp32 is the reference, int8 ones share one calibration."""
BACKENDS = tuple(PRECISION)
"""Names accepted by ``create_backend`` and ``--backend`` (see :mod:`ftpose.export.backends`)."""


class BackendUnavailableError(RuntimeError):
    """A backend cannot run here (missing package, execution provider or device); the message says why."""


_LAZY = {"create_backend": "backends",
         "export_onnx": "onnx", "verify_onnx": "onnx", "ExportError": "onnx", "quantize_int8": "quantize"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"ftpose.export.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ftpose.export' has no attribute {name!r}")
