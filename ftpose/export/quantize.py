"""Static int8 quantization of an exported network with ONNX Runtime, calibrated on real photos.

Weights are quantized per output channel (signed 8 bits, symmetric), activations per
tensor (unsigned 8 bits) with ranges measured by running the fp32 graph on real photos
prepared exactly as the predictor prepares them.  The result is a QDQ graph, which ONNX
Runtime's CPU provider turns into integer convolutions (the AVX-512 VNNI kernels on
CPUs that have them) and which TensorRT reads as explicit int8 precision.

The two output convolutions stay in fp32: they cost a fraction of a percent of the
MACs, and keeping them means the maps are not rounded to 256 levels.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ftpose.export.onnx import INPUT_NAME, OUTPUT_NAMES
from ftpose.files import atomic_path
from ftpose.network_input import PAD_VALUE, network_batch, prepare_network_input

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


def calibration_inputs(photos: Iterable[np.ndarray], heights: Sequence[int] = (368,),
                       size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Network inputs ``(1, 3, H, W)`` of BGR photos, prepared as the predictor prepares them.

    Each photo is resized to each of ``heights`` (aspect kept, padded to multiples of 8),
    or, with ``size`` ``(H, W)``, fitted inside it and padded to exactly that size, which
    the ``percentile`` and ``entropy`` methods need (they histogram whole tensors).
    """
    if size is None:
        return [network_batch([prepare_network_input(photo, height).pixels]) for photo in photos for height in heights]
    inputs = []
    for photo in photos:
        scale = min(size[0] / photo.shape[0], size[1] / photo.shape[1])
        rows, cols = max(1, round(photo.shape[0] * scale)), max(1, round(photo.shape[1] * scale))
        canvas = np.full((*size, 3), PAD_VALUE, np.uint8)
        canvas[:rows, :cols] = cv2.resize(photo, (cols, rows), interpolation=cv2.INTER_AREA)
        inputs.append(network_batch([canvas]))
    return inputs


def quantize_int8(source, destination, inputs: Sequence[np.ndarray], method: str = "minmax") -> Path:
    """Write the int8 version of the fp32 ONNX graph ``source`` to ``destination``.

    ``inputs`` are calibration batches (:func:`calibration_inputs`).  ``method`` picks
    the activation ranges: ``minmax`` (the observed extremes), ``percentile`` (the
    99.999th percentile of absolute values) or ``entropy`` (KL divergence).
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    if not inputs:
        raise ValueError("int8 calibration needs at least one photo")
    if method != "minmax" and len({x.shape for x in inputs}) > 1:
        raise ValueError(f"the {method} method needs calibration inputs of one size "
                         "(calibration_inputs(photos, size=(H, W)))")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(inputs)

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    destination = Path(destination)
    with tempfile.TemporaryDirectory(prefix="ftpose-int8-") as work:
        prepared = Path(work) / "prepared.onnx"
        # shape inference and constant folding; the graph has only static-shaped convs
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared))
        outputs = set(OUTPUT_NAMES)
        output_convs = [n.name for n in graph.graph.node if n.op_type == "Conv" and outputs & set(n.output)]
        options = {"WeightSymmetric": True, "ActivationSymmetric": False}
        if method == "percentile":
            options["CalibPercentile"] = 99.999
        with atomic_path(destination) as temp:
            quantize_static(str(prepared), str(temp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=output_convs,
                            calibrate_method=getattr(CalibrationMethod, {"minmax": "MinMax", "percentile": "Percentile",
                                                                         "entropy": "Entropy"}[method]),
                            extra_options=options)
            _copy_metadata(source, temp, method, len(inputs))
    return destination


def _copy_metadata(source, target: Path, method: str, count: int) -> None:
    import onnx

    graph = onnx.load(str(target))
    original = onnx.load(str(source), load_external_data=False)
    del graph.metadata_props[:]
    graph.metadata_props.extend(original.metadata_props)
    graph.metadata_props.add(key="ftpose.precision", value="int8")
    graph.metadata_props.add(key="ftpose.calibration", value=f"{method} over {count} photo input(s)")
    onnx.save(graph, str(target))
