"""ftnet-light: the network contract, its ablations, ONNX export parity, and its start from Intel's IR."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ftpose.export.onnx import export_onnx
from ftpose.files import SAMPLE_PHOTO, read_image
from ftpose.models import create_model
from ftpose.models.foreign import load_network_file
from ftpose.network_input import prepare_network_input

torch.set_num_threads(2)


@pytest.mark.parametrize("options, stages", [
    ({}, 2), ({"transfer_from": None}, 2), ({"transfer_from": "conv1"}, 2), ({"transfer_from": "conv5"}, 2),
    ({"refinement": False}, 1), ({"transfer_width": 32}, 2),
])
def test_contract_and_ablations(options, stages):
    model = create_model("ftnet-light", **options).eval()
    with torch.no_grad():
        outputs = model(torch.zeros(2, 3, 64, 48))
    assert len(outputs) == stages and model.stride == 8
    for heatmaps, pafs in outputs:
        assert heatmaps.shape == (2, 19, 8, 6) and pafs.shape == (2, 38, 8, 6)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.zeros(1, 3, 60, 48))


def test_no_transfer_removes_only_the_transfer_blocks():
    full = dict(create_model("ftnet-light").named_parameters())
    none = dict(create_model("ftnet-light", transfer_from=None).named_parameters())
    assert set(none) == {name for name in full if not name.startswith("transfer.")}
    assert all(full[name].shape == none[name].shape for name in none)


@pytest.mark.parametrize("bad", [{"transfer_from": "conv9"}, {"transfer_width": 0}])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        create_model("ftnet-light", **bad)


@pytest.fixture(scope="module")
def from_ir(intel_ir):
    model = create_model("ftnet-light").eval()
    model.load_openvino_ir(intel_ir)
    return model


@pytest.mark.openvino
def test_onnx_export_matches_pytorch_on_a_real_photo(from_ir, tmp_path):
    """With trained weights (random ones give maps in the hundreds, where 1e-4 is float noise)."""
    report = export_onnx(from_ir, tmp_path / "light.onnx", input_size=(184, 216))
    assert report.max_abs_diff <= 1e-4 and len(report.checks) == 2


def _ir_layer_output(intel_ir, layer: str, pixels: np.ndarray) -> np.ndarray:
    """The output of ``layer`` inside Intel's network for BGR ``pixels``."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(intel_ir))
    (node,) = [op for op in model.get_ordered_ops() if op.get_friendly_name() == layer]
    output = model.add_outputs(node.output(0))[0]
    model.reshape([1, 3, *pixels.shape[:2]])
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled({0: pixels.transpose(2, 0, 1)[None].astype(np.float32)})[compiled.outputs[-1]]


@pytest.mark.openvino
@pytest.mark.parametrize("layer, tap, min_correlation, max_relative_error", [
    ("relu1", lambda m, x: torch.relu(m.backbone.conv1(x)), 0.9999, 0.01),   # the input convention, folded in
    ("relu4_4_CPM", lambda m, x: m.backbone(x), 0.995, 0.10),                # the whole backbone
])
def test_backbone_from_the_ir_computes_the_irs_features_on_a_real_photo(from_ir, intel_ir, layer, tap,
                                                                       min_correlation, max_relative_error):
    """Layer outputs equal the IR's own on the sample photo, up to the IR's int8 quantisation of
    activations: its error grows layer by layer (relative mean error 0.3% after conv1, about 7% at
    the CPM output), while a wrong wiring or channel order would break the correlation."""
    pixels = prepare_network_input(read_image(SAMPLE_PHOTO), 368).pixels
    expected = _ir_layer_output(intel_ir, layer, pixels)
    with torch.no_grad():
        features = tap(from_ir, torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 256 - 0.5).numpy()
    assert features.shape == expected.shape
    assert np.corrcoef(features.ravel(), expected.ravel())[0, 1] > min_correlation
    assert np.abs(features - expected).mean() < max_relative_error * np.abs(expected).mean()


@pytest.mark.openvino
def test_network_from_the_ir_gives_the_irs_maps(from_ir, intel_ir):
    """Final maps: the same as Intel's network's, in ftpose's channel order (transfer starts near zero)."""
    pixels = prepare_network_input(read_image(SAMPLE_PHOTO), 368).pixels
    heatmaps, pafs = load_network_file(intel_ir).maps(pixels)
    with torch.no_grad():
        ours = from_ir(torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 256 - 0.5)[-1]
    for mine, theirs in zip(ours, (heatmaps, pafs)):
        assert np.corrcoef(mine[0].numpy().ravel(), theirs.ravel())[0, 1] > 0.998


@pytest.mark.openvino
def test_loading_another_ir_is_refused(tmp_path):
    openvino = pytest.importorskip("openvino")
    path = tmp_path / "other.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 5, 3), torch.zeros(1, 3, 16, 16), str(path), dynamo=False)

    xml = tmp_path / "other.xml"
    openvino.save_model(openvino.convert_model(str(path)), str(xml))
    with pytest.raises(ValueError, match="not a Lightweight OpenPose IR"):
        create_model("ftnet-light").load_openvino_ir(xml)


def test_shipped_weights_find_the_sample_photos_annotated_people():
    """ftpose/assets/ftnet-light.safetensors through the Predictor: each of the sample photo's 4
    well-labelled COCO people (tests/data, CC BY 4.0) is found at OKS 0.5 or more (AP50's threshold)."""
    import json
    from pathlib import Path

    from people_match import MIN_OKS, WELL_LABELLED, best_oks

    from ftpose.predictor import Predictor

    predictor = Predictor("ftnet-light")
    assert predictor.trained
    found = predictor.predict(read_image(SAMPLE_PHOTO)).to_coco17()
    annotations = json.loads((Path(__file__).parent / "data" / "000000000790_keypoints.json").read_text())
    people = [a for a in annotations["annotations"] if a["num_keypoints"] >= WELL_LABELLED]
    assert len(people) == 4
    assert min(best_oks(found, people)) >= MIN_OKS
