"""ONNX export: the graph computes what PyTorch computes, on real photos, at any size."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from tiny_networks import visible_network

from ftpose.cli import main
from ftpose.export.onnx import (INPUT_NAME, OUTPUT_NAMES, TOLERANCE, ExportError, FinalMaps,
                                export_onnx, read_metadata)
from ftpose.export.quantize import calibration_inputs, quantize_int8
from ftpose.files import InputError, read_image
from ftpose.network_input import network_batch, prepare_network_input


@pytest.fixture(scope="module")
def tiny_ftnet():
    return visible_network("ftnet", width_mult=0.125)


@pytest.fixture(scope="module")
def exported(tiny_ftnet, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    return export_onnx(tiny_ftnet, path)


def onnx_maps(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})


def test_export_is_verified_on_real_photos_at_two_sizes(exported):
    assert exported.path.is_file()
    assert [c.label for c in exported.checks] == ["photo 1", "photo 1 + mirror"]
    assert exported.checks[0].shape == (1, 3, 368, 432)
    assert exported.checks[1].shape[0] == 2 and exported.checks[1].shape[2:] != (368, 432)
    assert 0 < exported.max_abs_diff <= TOLERANCE


def test_dynamic_graph_matches_pytorch_on_another_photo_and_size(exported, tiny_ftnet, shared_data):
    image = read_image(shared_data / "people" / "ultralytics__zidane.jpg")
    x = network_batch([prepare_network_input(image, 200).pixels])       # 200 x 360: a size never traced
    heatmaps, pafs = onnx_maps(exported.path, x)
    with torch.inference_mode():
        expected = tiny_ftnet(torch.from_numpy(x))[-1]
    assert heatmaps.shape == (1, 19, 25, 45) and pafs.shape == (1, 38, 25, 45)
    assert np.abs(heatmaps - expected[0].numpy()).max() <= TOLERANCE
    assert np.abs(pafs - expected[1].numpy()).max() <= TOLERANCE


def test_graph_metadata_and_opset(exported):
    graph = onnx.load(str(exported.path))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [o.name for o in graph.graph.output] == list(OUTPUT_NAMES)
    assert [n.op_type for n in graph.graph.node].count("MaxPool") == 3   # not the eager fast path
    meta = read_metadata(exported.path)
    assert meta["model"] == "ftnet" and meta["stride"] == "8"
    assert json.loads(meta["options"])["width_mult"] == 0.125


def test_static_export_accepts_only_its_size(tiny_ftnet, tmp_path, photo):
    report = export_onnx(tiny_ftnet, tmp_path / "static.onnx", input_size=(96, 128), dynamic=False, photos=[photo])
    assert [c.shape for c in report.checks] == [(1, 3, 96, 128)]
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        onnx_maps(report.path, np.zeros((1, 3, 104, 128), np.float32))


class DataDependentNetwork(torch.nn.Module):
    """Scales its maps by the input's mean: tracing freezes that number, so the graph is wrong."""

    stride = 8

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        heatmaps, pafs = self.network(x)[-1]
        gain = 1.0 + float(x.mean())
        return [(heatmaps * gain, pafs * gain)]


def test_export_that_does_not_match_is_refused_and_not_written(tiny_ftnet, tmp_path, photo):
    path = tmp_path / "wrong.onnx"
    with pytest.raises(ExportError, match=r"wrong.onnx: not written.*differ"):
        export_onnx(DataDependentNetwork(tiny_ftnet), path, input_size=(96, 128), photos=[photo])
    assert not path.exists() and not list(tmp_path.iterdir())


def test_int8_graph_is_integer_and_close_to_fp32(exported, tmp_path, photo, shared_data):
    calibration = [read_image(shared_data / "people" / name) for name in ("ultralytics__bus.jpg",
                                                                          "opencv-doc__messi5.jpg")]
    path = quantize_int8(exported.path, tmp_path / "tiny.int8.onnx", calibration_inputs(calibration, (184,)))
    graph = onnx.load(str(path))
    ops = {n.op_type for n in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weights = {i.name: i for i in graph.graph.initializer}
    scales = [n.input[1] for n in graph.graph.node if n.op_type == "DequantizeLinear"
              and n.input[0] in weights and weights[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert scales and all(len(weights[s].dims) == 1 for s in scales)        # per-channel weight scales
    assert read_metadata(path)["precision"] == "int8"
    x = calibration_inputs([photo], (184,))[0]                              # a photo it was not calibrated on
    for fp32, int8 in zip(onnx_maps(exported.path, x), onnx_maps(path, x)):
        spread = fp32.max() - fp32.min()
        assert np.abs(int8 - fp32).mean() < 0.02 * spread
        assert np.corrcoef(int8.ravel(), fp32.ravel())[0, 1] > 0.99


def test_cli_export_writes_verified_file(tmp_path):
    out = tmp_path / "tiny.onnx"
    result = CliRunner().invoke(main, ["export", "ftnet", "-o", "width_mult=0.125", "--input", "96x128",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "untrained" in result.output and "photo 1 + mirror" in result.output and f"wrote {out}" in result.output
    assert read_metadata(out)["model"] == "ftnet"


@pytest.mark.parametrize("arguments, message", [
    (["missing.safetensors"], "missing.safetensors: no such file"),
    (["ftnet", "--input", "100x128"], "multiples of 8"),
    (["nonet"], "unknown model 'nonet'"),
    (["ftnet", "-o", "width_mult=0.125", "--verify", "nothing.jpg"], "nothing.jpg"),
])
def test_cli_export_bad_input_is_one_clear_line(arguments, message, tmp_path):
    result = CliRunner().invoke(main, ["export", *arguments, "--out", str(tmp_path / "x.onnx")])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.onnx").exists()


def test_metadata_of_a_file_that_is_not_onnx(tmp_path):
    path = tmp_path / "fake.onnx"
    path.write_bytes(b"\x00\x01 not a protobuf" * 10)
    with pytest.raises(InputError, match="fake.onnx: not a readable ONNX file"):
        read_metadata(path)


def test_final_maps_is_the_last_stage(tiny_ftnet):
    x = torch.zeros(1, 3, 64, 64)
    with torch.inference_mode():
        assert all(torch.equal(a, b) for a, b in zip(FinalMaps(tiny_ftnet)(x), tiny_ftnet(x)[-1]))
