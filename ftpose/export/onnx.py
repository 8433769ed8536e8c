"""ONNX export of a network's final maps, verified against PyTorch on real photos.

The exported graph takes the network input of docs/DEVELOPING.md (``image``:
``(B, 3, H, W)`` float32 BGR ``pixels / 256 - 0.5``, H and W multiples of 8) and returns
only the final maps, ``heatmaps (B, 19, H/8, W/8)`` and ``pafs (B, 38, H/8, W/8)``:
inference needs nothing else, and dropping the intermediate stages' outputs lets the
runtime skip nothing it must compute anyway.  With ``dynamic=True`` (the default)
batch, height and width are free, so one file serves every image size.

Export is not done until the file has been checked: ONNX Runtime and PyTorch run the
same real photos (the bundled sample photo unless others are given) and the maps must
agree to :data:`TOLERANCE`; otherwise nothing is written and :class:`ExportError`
says by how much they differ.  A dynamic export is checked at two sizes and batch
sizes, so a shape baked into the graph by tracing cannot slip through.

The file's metadata records the model (``ftpose.model``, ``ftpose.options``) so a
backend can say which network it runs.

The graph is traced with PyTorch's TorchScript exporter (``dynamo=False``).  The
``torch.export`` one gives the same graph here but needs the extra ``onnxscript``
package and takes six times longer; switch when the pinned torch drops the tracer.
"""
from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ftpose.files import SAMPLE_PHOTO, InputError, atomic_path
from ftpose.network_input import network_batch, network_stride, prepare_network_input

OPSET = 18
INPUT_NAME = "image"
OUTPUT_NAMES = ("heatmaps", "pafs")
TOLERANCE = 1e-4
"""Largest absolute difference allowed between ONNX Runtime's and PyTorch's maps."""
METADATA_PREFIX = "ftpose."


class ExportError(RuntimeError):
    """The exported graph does not compute what the PyTorch network computes."""


class FinalMaps(nn.Module):
    """``network(x)[-1]`` as a module: the final ``(heatmaps, pafs)``, what inference uses."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        heatmaps, pafs = self.network(x)[-1]
        return heatmaps, pafs


@dataclass
class Check:
    """One verification run: what went in and the largest differences that came out."""

    label: str
    shape: tuple[int, ...]
    heatmaps_diff: float
    pafs_diff: float

    @property
    def max_abs_diff(self) -> float:
        return max(self.heatmaps_diff, self.pafs_diff)

    def __str__(self) -> str:
        shape = "x".join(map(str, self.shape))
        return f"{self.label} ({shape}): max |ONNX - PyTorch| heatmaps {self.heatmaps_diff:.2e}, pafs {self.pafs_diff:.2e}"


@dataclass
class ExportReport:
    path: Path
    opset: int
    dynamic: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=0.0)


def export_onnx(network: nn.Module, path, input_size: tuple[int, int] = (368, 432), dynamic: bool = True,
                opset: int = OPSET, photos: Sequence[np.ndarray] | None = None,
                tolerance: float = TOLERANCE) -> ExportReport:
    """Export ``network``'s final maps to ``path`` and verify them (see the module docstring).

    ``input_size`` ``(H, W)`` is the traced size and, for a static export, the only
    size the file accepts.  ``photos`` are BGR uint8 images to verify on (default:
    the bundled sample photo).  Raises :class:`ExportError` when ONNX Runtime's maps
    differ from PyTorch's by more than ``tolerance``; ``path`` is then left untouched.
    """
    import onnx

    if opset < 17:
        raise ValueError(f"opset must be 17 or newer, got {opset}")
    height, width = input_size
    stride = network_stride(network)
    if height % stride or width % stride or min(height, width) <= 0:
        raise ValueError(f"input size must be positive multiples of {stride}, got {height}x{width}")
    module = FinalMaps(_cpu_fp32_copy(network)).eval()
    path = Path(path)
    report = ExportReport(path, opset, dynamic)
    with atomic_path(path) as temp:
        axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
        axes.update({name: {0: "batch", 2: "map_height", 3: "map_width"} for name in OUTPUT_NAMES})
        with warnings.catch_warnings(), torch.inference_mode():
            # the tracer warns about the input-shape checks, which are constant for valid inputs
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (torch.zeros(1, 3, height, width),), str(temp), dynamo=False,
                              opset_version=opset, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                              dynamic_axes=axes if dynamic else None, do_constant_folding=True)
        graph = onnx.load(str(temp))
        _set_metadata(graph, network, stride)
        onnx.save(graph, str(temp))
        report.checks = verify_onnx(temp, module, photos, input_size, dynamic)
        if report.max_abs_diff > tolerance:
            worst = max(report.checks, key=lambda c: c.max_abs_diff)
            raise ExportError(f"{path}: not written, the ONNX graph's maps differ from PyTorch's by "
                              f"{worst.max_abs_diff:.2e} > {tolerance:.0e} ({worst})")
    return report


def verify_onnx(path, network: nn.Module, photos: Sequence[np.ndarray] | None = None,
                input_size: tuple[int, int] = (368, 432), dynamic: bool = True) -> list[Check]:
    """Run ONNX Runtime and PyTorch on the same real photos; the differences of their maps.

    Each photo is checked at ``input_size`` (resized to it).  For a dynamic graph each
    is also checked as a batch of two (the photo and its mirror image) at three
    quarters of the height, aspect kept, which exercises every free axis.
    """
    import onnxruntime as ort

    network = network if isinstance(network, FinalMaps) else FinalMaps(network)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if photos is None:
        from ftpose.files import read_image

        photos = [read_image(SAMPLE_PHOTO)]
    height, width = input_size
    checks = []
    for i, photo in enumerate(photos):
        label = f"photo {i + 1}"
        inputs = [(label, [cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)])]
        if dynamic:
            stride = network_stride(network.network)
            pixels = prepare_network_input(photo, max(stride, round(0.75 * height)), stride).pixels
            inputs.append((f"{label} + mirror", [pixels, pixels[:, ::-1]]))
        for name, images in inputs:
            x = network_batch(images)
            onnx_maps = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
            with torch.inference_mode():
                torch_maps = network(torch.from_numpy(x))
            diffs = [float(np.abs(a - b.numpy()).max()) for a, b in zip(onnx_maps, torch_maps)]
            checks.append(Check(name, x.shape, *diffs))
    return checks


def read_metadata(path) -> dict[str, str]:
    """The ``ftpose.*`` metadata of an exported file (``model``, ``options``, ``stride``)."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except Exception as e:  # onnx raises DecodeError, ValueError, ... for non-ONNX files
        raise InputError(path, f"not a readable ONNX file ({type(e).__name__})") from None
    return {p.key.removeprefix(METADATA_PREFIX): p.value for p in graph.metadata_props
            if p.key.startswith(METADATA_PREFIX)}


def _set_metadata(graph, network: nn.Module, stride: int) -> None:
    entries = {
        "model": getattr(network, "model_name", type(network).__name__),
        "options": json.dumps(dict(getattr(network, "model_options", {}))),
        "stride": str(stride),
        "input": "image (B,3,H,W) float32 BGR pixels/256-0.5, H and W multiples of the stride",
        "outputs": "heatmaps (B,19,H/stride,W/stride), pafs (B,38,H/stride,W/stride): the final maps",
    }
    for key, value in entries.items():
        graph.metadata_props.add(key=METADATA_PREFIX + key, value=value)
    graph.producer_name = "ftpose"


def _cpu_fp32_copy(network: nn.Module) -> nn.Module:
    """The network on the CPU in fp32 eval mode, copied only when it is not already so."""
    parameter = next(network.parameters(), None)
    if parameter is None or (parameter.device.type == "cpu" and parameter.dtype == torch.float32):
        return network.eval()
    return copy.deepcopy(network).cpu().float().eval()
