"""Inference backends: one network, run by eager PyTorch, ONNX Runtime or OpenVINO, in fp32, bf16 or int8.

A backend is a callable from the network input (``(B, 3, H, W)`` float32 tensor, see
docs/DEVELOPING.md) to the final ``(heatmaps, pafs)`` as float32 tensors on the input's
device; the :class:`~ftpose.predictor.Predictor` runs its network through one.

============== ==============================================================
name           what runs the network
============== ==============================================================
torch          eager PyTorch, fp32: the reference
torch-bf16     eager PyTorch under bfloat16 autocast, channels-last (CPUs with
               AVX-512 BF16 or AMX; recent NVIDIA GPUs)
onnxruntime    ONNX Runtime, fp32, every graph optimisation; CPU, or the CUDA
               provider when the device is ``cuda``
onnxruntime-   ONNX Runtime, int8 weights and activations calibrated on real
int8           photos (CPU; fast with AVX-512 VNNI)
openvino       OpenVINO, fp32 (CPU; the ``openvino`` extra)
openvino-bf16  OpenVINO with bfloat16 inference precision (CPUs with AVX-512
               BF16 or AMX)
openvino-int8  OpenVINO running onnxruntime-int8's calibrated int8 graph (CPU)
tensorrt       ONNX Runtime's TensorRT provider in fp16 (NVIDIA GPUs; needs the
               onnxruntime-gpu package and TensorRT)
============== ==============================================================

The ONNX Runtime and OpenVINO backends export the network on first use and keep the
file (and the int8 version and TensorRT's engines) in ``<cache>/onnx/``, keyed by a
digest of the weights, so a network is exported and calibrated once.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ftpose.export import BackendUnavailableError
from ftpose.export.registry import BackendSpec


class TorchBackend:
    """Eager PyTorch, optionally under bfloat16 autocast with channels-last tensors.

    bf16 autocast runs convolutions in bfloat16 (oneDNN's AVX-512 BF16 kernels on this
    kind of CPU), and channels-last is the layout those kernels want, so the network's
    weights are moved to it once, in place (their values do not change).  fp32 leaves
    the network exactly as given: it is the reference, and may be a model in training.
    """

    def __init__(self, network: nn.Module, bf16: bool = False):
        self.network = network.eval()
        self.bf16 = bf16
        self.name = "torch-bf16" if bf16 else "torch"
        if bf16:
            self.network.to(memory_format=torch.channels_last)

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        precision = (torch.autocast(batch.device.type, dtype=torch.bfloat16) if self.bf16
                     else contextlib.nullcontext())
        if self.bf16:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), precision:
            heatmaps, pafs = self.network(batch)[-1]
        return heatmaps.float().contiguous(), pafs.float().contiguous()


class OnnxRuntimeBackend:
    """An ONNX graph in an ONNX Runtime session, graph optimisations on.

    ``providers`` are ONNX Runtime execution providers, most preferred first;
    ``threads`` is the number of intra-op threads (default: PyTorch's, one per core).
    """

    def __init__(self, path, providers: Sequence = ("CPUExecutionProvider",), threads: int | None = None,
                 name: str = "onnxruntime"):
        import onnxruntime as ort

        from ftpose.export.onnx import INPUT_NAME, OUTPUT_NAMES

        self.name = name
        self.path = Path(path)
        self._input, self._outputs = INPUT_NAME, list(OUTPUT_NAMES)
        available = set(ort.get_available_providers())
        missing = [p for p in (_provider_name(p) for p in providers) if p not in available]
        if missing:
            raise BackendUnavailableError(
                f"backend {name!r} needs ONNX Runtime's {', '.join(missing)}, which this onnxruntime lacks "
                f"(it has {', '.join(sorted(available))}); for NVIDIA GPUs install onnxruntime-gpu in place of "
                "onnxruntime (and TensorRT for the TensorRT provider)")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning: spinning workers hold the cores that the
        # pipeline's other steps (resizing, merging, grouping) need; end to end is faster
        # and the network alone no slower (docs/DEVELOPING.md, Measured design choices).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=list(providers))

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = batch.detach().float().cpu().contiguous().numpy()
        heatmaps, pafs = self.session.run(self._outputs, {self._input: x})
        return torch.from_numpy(heatmaps).to(batch.device), torch.from_numpy(pafs).to(batch.device)


class OpenVinoBackend:
    """An ONNX graph compiled by OpenVINO for the CPU, tuned for the latency of one call.

    ``precision`` is OpenVINO's inference precision (``"f32"`` or ``"bf16"``) for every
    operation the graph does not fix itself: an int8 QDQ graph runs its quantized
    convolutions in int8 whatever it says.  ``threads``: default PyTorch's, one per core.

    The graph is compiled once, with its batch, height and width left free.  Compiling
    per input shape instead is a little faster in steady state but costs a compile and
    much more memory for every new shape, and the predictor meets a new shape for every
    image aspect ratio and scale, so one dynamic graph is faster overall
    (docs/DEVELOPING.md, Measured design choices).
    """

    def __init__(self, path, precision: str = "f32", threads: int | None = None, name: str = "openvino"):
        ov = import_openvino(name)
        from ftpose.export.onnx import INPUT_NAME, OUTPUT_NAMES

        self.name = name
        self.path = Path(path)
        self._input, self._outputs = INPUT_NAME, OUTPUT_NAMES
        config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
                  "PERFORMANCE_HINT": "LATENCY"}
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.compiled({self._input: batch.detach().float().cpu().contiguous().numpy()})
        heatmaps, pafs = (torch.from_numpy(outputs[name]) for name in self._outputs)
        return heatmaps.to(batch.device), pafs.to(batch.device)


def import_openvino(backend: str):
    """The ``openvino`` module, or why ``backend`` cannot run without it."""
    try:
        import openvino
    except ImportError:
        raise BackendUnavailableError(f'backend {backend!r} needs OpenVINO, which is not installed: '
                                      'pip install "ftpose[openvino]"') from None
    return openvino


# -- factories named by the registry (ftpose.export.registry): (spec, network, device, threads, calibration)

def torch_backend(spec: BackendSpec, network: nn.Module, device: torch.device, threads: int | None,
                  calibration: Sequence[np.ndarray] | None) -> TorchBackend:
    return TorchBackend(network, bf16=spec.precision == "bf16")


def onnxruntime_backend(spec: BackendSpec, network: nn.Module, device: torch.device, threads: int | None,
                        calibration: Sequence[np.ndarray] | None) -> OnnxRuntimeBackend:
    graph = _graph(spec, network, device, calibration)
    return OnnxRuntimeBackend(graph, execution_providers(device), threads, spec.name)


def openvino_backend(spec: BackendSpec, network: nn.Module, device: torch.device, threads: int | None,
                     calibration: Sequence[np.ndarray] | None) -> OpenVinoBackend:
    if device.type != "cpu":
        raise BackendUnavailableError(f"backend {spec.name!r} runs on the CPU; on a GPU use 'tensorrt' or "
                                      "'onnxruntime'")
    import_openvino(spec.name)   # before the export and calibration, which take a while
    graph = _graph(spec, network, device, calibration)
    return OpenVinoBackend(graph, "bf16" if spec.precision == "bf16" else "f32", threads, spec.name)


def tensorrt_backend(spec: BackendSpec, network: nn.Module, device: torch.device, threads: int | None,
                     calibration: Sequence[np.ndarray] | None) -> OnnxRuntimeBackend:
    if device.type != "cuda":
        raise BackendUnavailableError(f"backend {spec.name!r} needs an NVIDIA GPU: pass device cuda (or cuda:N)")
    graph = _graph(spec, network, device, calibration)
    engines = graph.parent / "tensorrt"
    engines.mkdir(parents=True, exist_ok=True)
    # one engine for every input up to 8 x 1024 x 1024 (no rebuild per image size), tuned for one
    # 4:3 frame at the default height; engines are cached on disk, the first build takes minutes
    tensorrt = ("TensorrtExecutionProvider", {
        "device_id": device.index or 0, "trt_fp16_enable": True, "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(engines), "trt_profile_min_shapes": "image:1x3x64x64",
        "trt_profile_opt_shapes": "image:1x3x368x496", "trt_profile_max_shapes": "image:8x3x1024x1024"})
    return OnnxRuntimeBackend(graph, [tensorrt, *execution_providers(device)], threads, spec.name)


def _graph(spec: BackendSpec, network: nn.Module, device: torch.device,
           calibration: Sequence[np.ndarray] | None) -> Path:
    """The cached ONNX graph a backend runs: fp32, or calibrated int8 (CPU only) for int8 backends."""
    graph = cached_onnx(network)
    if spec.precision == "int8":
        if device.type != "cpu":
            raise BackendUnavailableError(f"backend {spec.name!r} runs on the CPU; on a GPU use 'tensorrt'")
        graph = cached_int8(graph, calibration)
    return graph


@contextlib.contextmanager
def pipeline_threads(backend):
    """Within the block PyTorch uses one thread when ``backend`` runs on ONNX Runtime or OpenVINO.

    The predictor's own tensor work around the network (normalising, merging maps)
    takes well under a millisecond on one thread, while idle PyTorch workers keep
    spinning on the cores ONNX Runtime's (or OpenVINO's) threads need, which slows the
    whole pipeline (docs/DEVELOPING.md, Measured design choices).  PyTorch backends
    keep every thread.
    """
    threads = torch.get_num_threads()
    if isinstance(backend, (OnnxRuntimeBackend, OpenVinoBackend)):
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def execution_providers(device: torch.device) -> list:
    """ONNX Runtime providers for a torch device: CUDA (then CPU) for ``cuda:N``, else CPU."""
    if device.type == "cuda":
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    if device.type != "cpu":
        raise BackendUnavailableError(f"ONNX Runtime backends run on cpu or cuda, not {device.type}")
    return ["CPUExecutionProvider"]


def cached_onnx(network: nn.Module) -> Path:
    """The network exported to ONNX (dynamic shapes, verified), made once per set of weights."""
    from ftpose.export.onnx import export_onnx

    name = getattr(network, "model_name", type(network).__name__)
    runtime = getattr(network, "runtime", None)   # a network file (models.foreign), not torch layers
    if runtime is not None:
        raise BackendUnavailableError(f"network {name!r} is a network file that {runtime} runs as it is; "
                                      "it has no ONNX export, so only the default backend (--backend torch) runs it")
    path = onnx_cache_dir() / f"{name}-{weights_digest(network)}.onnx"
    if not path.is_file():
        try:
            export_onnx(network, path)
        except Exception as e:  # tracing fails in many ways (e.g. a network that is not made of torch ops)
            problem = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise BackendUnavailableError(f"network {name!r} cannot run in ONNX Runtime: its ONNX export "
                                          f"failed ({problem}); use the 'torch' backend") from e
    return path


def cached_int8(fp32: Path, photos: Sequence[np.ndarray] | None = None) -> Path:
    """The int8 version of the exported graph ``fp32``, calibrated on ``photos``, made once per photo set."""
    from ftpose.export.quantize import calibration_inputs, quantize_int8

    if photos is None:
        from ftpose.files import SAMPLE_PHOTO, read_image

        photos = [read_image(SAMPLE_PHOTO)]
    digest = hashlib.sha256()
    for photo in photos:
        digest.update(np.ascontiguousarray(photo).tobytes())
    path = fp32.with_name(f"{fp32.stem}-int8-{digest.hexdigest()[:12]}.onnx")
    if not path.is_file():
        quantize_int8(fp32, path, calibration_inputs(photos))
    return path


def weights_digest(network: nn.Module) -> str:
    """A short digest of the network's identity and weights, and of the exporter's version."""
    digest = hashlib.sha256(json.dumps([getattr(network, "model_name", type(network).__name__),
                                        dict(getattr(network, "model_options", {})), torch.__version__],
                                       sort_keys=True, default=str).encode())
    for key, tensor in network.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def onnx_cache_dir() -> Path:
    from ftpose.downloads import cache_dir

    return cache_dir() / "onnx"


def _provider_name(provider) -> str:
    return provider[0] if isinstance(provider, tuple) else provider
