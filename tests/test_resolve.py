"""Model sources (ftpose/models/resolve.py): one rule for names, weights, checkpoints and network files."""
from __future__ import annotations

import pytest
import torch

from ftpose.files import InputError
from ftpose.models import create_model, default_model, load_model, save_weights, shipped_weights
from ftpose.models.foreign import OpenPoseLayoutNetwork
from ftpose.models.resolve import is_file_source, resolve_model


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(3)
    model = create_model("ftnet", width_mult=0.125)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(model, path)
    return model, path


def test_a_name_gets_its_shipped_weights_and_nothing_the_default():
    name = default_model()
    if shipped_weights(name) is None:
        pytest.skip("no weights ship in this tree")
    network, trained = resolve_model(name)
    assert trained and same_weights(network, load_model(shipped_weights(name)))
    default, trained = resolve_model(None)
    assert trained and same_weights(default, network)


def test_a_name_with_options_is_a_fresh_untrained_variant():
    network, trained = resolve_model("ftnet-light", options={"refinement": False})
    assert not trained and network.refinement is None and network.model_options["refinement"] is False


def test_a_weights_file_is_the_same_network_as_a_path_or_as_weights(tiny_weights):
    model, path = tiny_weights
    by_path, trained = resolve_model(str(path))
    assert trained and same_weights(by_path, model)
    by_weights, trained = resolve_model("openpose", weights=path)   # the file names its own model
    assert trained and by_weights.model_name == "ftnet" and same_weights(by_weights, model)
    assert is_file_source(path) and not is_file_source("ftnet")


def test_an_exported_onnx_file_runs_as_a_network(tiny_weights, tmp_path):
    from ftpose.export.onnx import export_onnx

    model, _ = tiny_weights
    export_onnx(model, tmp_path / "tiny.onnx", (96, 128))
    network, trained = resolve_model(tmp_path / "tiny.onnx")
    assert trained and isinstance(network, OpenPoseLayoutNetwork)
    x = torch.zeros(1, 3, 96, 128)
    with torch.inference_mode():
        expected = model(x)[-1]
    for ours, theirs in zip(network(x)[-1], expected):
        assert float((ours - theirs).abs().max()) < 1e-4


@pytest.mark.parametrize("source, weights, options, error, message", [
    ("resnet", None, None, ValueError, "unknown model 'resnet'"),
    ("missing.safetensors", None, None, InputError, "missing.safetensors: no such file"),
    ("model.xml", "w.safetensors", None, ValueError, "carries its own weights"),
    ("ftnet", "w.safetensors", {"width_mult": 0.5}, ValueError, "records its own options"),
    ("missing.pt", None, {"width_mult": 0.5}, ValueError, "a file records its own model"),
])
def test_bad_sources_are_one_line_errors(source, weights, options, error, message):
    with pytest.raises(error, match=message) as raised:
        resolve_model(source, weights, options)
    assert "\n" not in str(raised.value)
