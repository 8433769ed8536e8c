"""Every backend runs the same network: same maps within its precision, same people.

Random weights make maps meaningless, so "the same people" is checked on a network
whose output is known: :class:`PlantedPeople` adds the ground-truth maps of three
upright people to a small fraction of a real (tiny, random) ``ftnet``'s maps.  Its
convolutions run in every backend's precision and perturb the maps, while the people
to be found stay known.  Maps themselves are compared on the plain tiny ``ftnet``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import warnings

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from ftpose.export import create_backend
from ftpose.export.backends import (BackendUnavailableError, OnnxRuntimeBackend, OpenVinoBackend, onnx_cache_dir,
                                    pipeline_threads, weights_digest)
from ftpose.files import read_image
from ftpose.keypoints import NUM_HEATMAPS
from ftpose.models import create_model
from ftpose.network_input import network_batch, prepare_network_input
from ftpose.predictor import Predictor, UntrainedNetworkWarning
from ftpose.speed import grouping_scene

# OpenVINO is an optional extra; with it installed, its backends are tested like the others, each
# test in a child process (the openvino mark, tests/openvino_isolation.py)
needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason='openvino not installed (pip install -e ".[openvino]")')
OPENVINO = (needs_openvino, pytest.mark.openvino)
CPU_BACKENDS = ("torch", "torch-bf16", "onnxruntime", "onnxruntime-int8",
                *(pytest.param(b, marks=OPENVINO) for b in ("openvino", "openvino-bf16", "openvino-int8")))
GPU_BACKENDS = ("torch", "torch-bf16", "onnxruntime", "tensorrt")
# max |maps - fp32 maps| relative to the fp32 maps' range, per backend: fp32 runtimes differ
# only in summation order, bf16 keeps 8 bits of mantissa, int8 rounds every activation
MAP_TOLERANCE = {"torch": 0.0, "torch-bf16": 0.03, "onnxruntime": 1e-5, "onnxruntime-int8": 0.1,
                 "openvino": 1e-5, "openvino-bf16": 0.03, "openvino-int8": 0.1}
INPUT_HEIGHT = 184


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Exports and int8 calibrations go to a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FTPOSE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


def tiny_ftnet():
    torch.manual_seed(0)
    return create_model("ftnet", width_mult=0.125).eval()


class PlantedPeople(torch.nn.Module):
    """Known maps (three upright people over the whole input) + ``noise`` x a real network's maps."""

    stride = 8

    def __init__(self, network, noise: float = 0.02):
        super().__init__()
        self.network, self.noise = network, noise
        heatmaps, pafs = grouping_scene(3, 184, 280)
        self.register_buffer("planted", torch.from_numpy(np.concatenate([heatmaps, pafs]))[None])

    def forward(self, x):
        heatmaps, pafs = self.network(x)[-1]
        planted = F.interpolate(self.planted, size=heatmaps.shape[-2:], mode="bilinear", align_corners=False)
        return [(planted[:, :NUM_HEATMAPS] + self.noise * heatmaps, planted[:, NUM_HEATMAPS:] + self.noise * pafs)]


@pytest.fixture(scope="module")
def reference_maps(photo):
    x = torch.from_numpy(network_batch([prepare_network_input(photo, INPUT_HEIGHT).pixels]))
    with torch.inference_mode():
        return x, [m.numpy() for m in tiny_ftnet()(x)[-1]]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_backend_maps_match_fp32_pytorch_on_a_real_photo(backend, reference_maps):
    x, expected = reference_maps
    heatmaps, pafs = create_backend(backend, tiny_ftnet())(x)
    assert heatmaps.dtype == pafs.dtype == torch.float32
    for got, want in zip((heatmaps.numpy(), pafs.numpy()), expected):
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= MAP_TOLERANCE[backend] * (want.max() - want.min()) + 1e-6
        assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99


@pytest.fixture(scope="module")
def planted_people(photo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedNetworkWarning)
        predictor = Predictor(PlantedPeople(tiny_ftnet()), input_height=INPUT_HEIGHT)
    people = predictor.predict(photo)
    assert len(people) == 3 and (people.keypoints[..., 2] > 0).all()
    return people


@pytest.mark.parametrize("backend", CPU_BACKENDS[1:])
def test_every_backend_finds_the_same_people_on_a_real_photo(backend, photo, planted_people):
    predictor = Predictor(PlantedPeople(tiny_ftnet()), input_height=INPUT_HEIGHT, backend=backend)
    people = predictor.predict(photo)
    assert len(people) == len(planted_people)
    assert (people.keypoints[..., 2] > 0).all()
    # photo pixels are 422 / 184 = 2.3 input pixels: agree to well within one input pixel
    assert np.abs(people.keypoints[..., :2] - planted_people.keypoints[..., :2]).max() < 1.0
    assert np.abs(people.scores - planted_people.scores).max() < 0.05


def test_onnx_backends_export_once_per_set_of_weights(tmp_path):
    network = tiny_ftnet()
    first = create_backend("onnxruntime", network)
    second = create_backend("onnxruntime", tiny_ftnet())
    assert first.path == second.path and weights_digest(network) in first.path.name
    other = create_model("ftnet", width_mult=0.125)
    assert weights_digest(other) != weights_digest(network)


@needs_openvino
@pytest.mark.openvino
def test_int8_backends_share_one_calibrated_graph():
    network = tiny_ftnet()
    assert create_backend("openvino-int8", network).path == create_backend("onnxruntime-int8", network).path


def test_predict_calibrates_int8_on_the_photos_it_is_given(tmp_path, photo):
    from click.testing import CliRunner

    from ftpose.cli import main
    from ftpose.models import save_weights

    weights = tmp_path / "tiny.safetensors"
    save_weights(tiny_ftnet(), weights)
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    cv2.imwrite(str(calibration / "flipped.jpg"), photo[:, ::-1])
    runner = CliRunner()
    result = runner.invoke(main, ["predict", "--weights", str(weights), "--backend", "onnxruntime-int8",
                                  "--calibration", str(calibration), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    # the int8 graph is named by a digest of its calibration photos: this one was calibrated on the given photo
    given = hashlib.sha256(read_image(calibration / "flipped.jpg").tobytes()).hexdigest()[:12]
    assert list(onnx_cache_dir().glob(f"*-int8-{given}.onnx"))
    result = runner.invoke(main, ["predict", "--weights", str(weights), "--calibration", str(calibration)])
    assert result.exit_code == 2 and "--calibration is for the int8 backends" in result.output
    result = runner.invoke(main, ["predict", "--weights", str(weights), "--backend", "onnxruntime-int8",
                                  "--calibration", str(tmp_path / "missing")])
    assert result.exit_code != 0 and "missing" in result.output


@pytest.mark.parametrize("backend", ["onnxruntime", pytest.param("openvino", marks=OPENVINO)])
def test_batches_and_sizes_of_an_exported_network(backend, photo):
    run = create_backend(backend, tiny_ftnet())
    pixels = prepare_network_input(photo, 96).pixels
    heatmaps, pafs = run(torch.from_numpy(network_batch([pixels, pixels[:, ::-1]])))
    assert heatmaps.shape == (2, 19, 12, 19) and pafs.shape == (2, 38, 12, 19)


@pytest.mark.parametrize("backend", ["onnxruntime", pytest.param("openvino", marks=OPENVINO)])
def test_pytorch_keeps_one_thread_beside_a_runtime_and_gets_the_rest_back(backend):
    threads = torch.get_num_threads()
    with pipeline_threads(create_backend(backend, tiny_ftnet())):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == threads
    with pipeline_threads(create_backend("torch", tiny_ftnet())):
        assert torch.get_num_threads() == threads


def test_unknown_and_unavailable_backends_say_why():
    with pytest.raises(ValueError, match="unknown backend 'tflite'; available: torch, torch-bf16"):
        create_backend("tflite", tiny_ftnet())
    with pytest.raises(BackendUnavailableError, match="needs an NVIDIA GPU"):
        create_backend("tensorrt", tiny_ftnet(), device="cpu")
    with pytest.raises(BackendUnavailableError, match="runs on the CPU; on a GPU use 'tensorrt' or 'onnxruntime'"):
        create_backend("openvino-int8", tiny_ftnet(), device="cuda")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackendUnavailableError, match="install onnxruntime-gpu"):
            OnnxRuntimeBackend("unused.onnx", ["CUDAExecutionProvider"])


def test_missing_openvino_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)    # makes `import openvino` fail
    with pytest.raises(BackendUnavailableError, match=r'pip install "ftpose\[openvino\]"') as error:
        create_backend("openvino-bf16", tiny_ftnet())
    assert "\n" not in str(error.value)
    with pytest.raises(BackendUnavailableError, match="needs OpenVINO"):
        OpenVinoBackend("unused.onnx")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_backends_match_fp32(backend, reference_maps):
    if backend in ("onnxruntime", "tensorrt"):
        needed = "TensorrtExecutionProvider" if backend == "tensorrt" else "CUDAExecutionProvider"
        if needed not in ort.get_available_providers():
            pytest.skip(f"onnxruntime has no {needed}")
    x, expected = reference_maps
    heatmaps, pafs = create_backend(backend, tiny_ftnet().cuda(), device="cuda")(x.cuda())
    for got, want in zip((heatmaps.cpu().numpy(), pafs.cpu().numpy()), expected):
        assert np.abs(got - want).max() <= 0.03 * (want.max() - want.min())
