"""The networks: budgets against the papers, output contract, wiring, ablations, weights I/O."""
from __future__ import annotations

import json

import pytest
import torch

import ftpose
from ftpose.files import InputError
from ftpose.keypoints import NUM_HEATMAPS, NUM_PAFS
from ftpose.models import create_model, list_models, load_model, parse_options, save_weights
from ftpose.models.complexity import count_parameters, summarize

torch.set_num_threads(2)

PAPER_INPUT = (368, 432)
TINY = 0.125  # width_mult of the cheap variants

ABLATIONS = [
    {},
    {"transfer_from": "conv1"}, {"transfer_from": "conv2"}, {"transfer_from": "conv3"},
    {"transfer_from": "conv5"},
    {"transfer_from": None},
    {"refinement": False},
    {"transfer_from": None, "refinement": False},
]


def meta_summary(name, **options):
    """Counts need shapes only: build on the meta device, no memory, no compute."""
    with torch.device("meta"):
        model = create_model(name, **options)
    return summarize(model, PAPER_INPUT)


def image_batch(height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=generator) - 0.5


def test_registry():
    assert {"ftnet", "openpose"} <= set(list_models())
    assert ftpose.list_models() == list_models()
    model = ftpose.create_model("ftnet", width_mult=TINY, refinement=False)
    assert model.model_name == "ftnet"
    assert model.model_options == {"transfer_from": "conv4", "refinement": False, "width_mult": TINY,
                                   "pretrained_backbone": False}
    assert model.stride == 8 and create_model("openpose", width_mult=TINY).stride == 8


@pytest.mark.parametrize("call, message", [
    (lambda: create_model("resnet"), "unknown model 'resnet'; available models: ftnet, ftnet-light, openpose"),
    (lambda: create_model("ftnet", transfer="conv4"), "has no option 'transfer'"),
    (lambda: create_model("ftnet", transfer_from="conv6"), "transfer_from must be one of"),
    (lambda: create_model("openpose", stages=0), "stages must be at least 1"),
    (lambda: create_model("ftnet", width_mult=0), "width_mult must be positive"),
    (lambda: create_model("ftnet", width_mult=0.5, pretrained_backbone=True), "only for the full-width"),
])
def test_bad_options_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_ftnet_budget_matches_paper():
    summary = meta_summary("ftnet")
    assert summary["params"] == pytest.approx(21_278_912, rel=0.01)   # paper §4.5
    assert summary["macs"] == pytest.approx(82.5e9, rel=0.02)          # paper Table 5
    assert summary["size_mb"] == pytest.approx(85.2, rel=0.01)         # paper Table 5
    modules = summary["modules"]
    assert set(modules) == {"backbone", "branches", "transfer", "refinement"}
    assert sum(modules.values()) == summary["params"]
    # Fig. 5: backbone 8.9M (here with the detection branches), transfer 4.7M, refinement 7.6M.
    assert modules["backbone"] + modules["branches"] == pytest.approx(8.9e6, rel=0.1)
    assert modules["transfer"] == pytest.approx(4.7e6, rel=0.2)
    assert modules["refinement"] == pytest.approx(7.6e6, rel=0.1)


def test_openpose_budget_matches_paper():
    summary = meta_summary("openpose")
    assert summary["params"] == pytest.approx(52.3e6, rel=0.005)
    assert summary["params"] == pytest.approx(52_298_816, rel=0.001)   # the paper's count of PAF
    assert summary["macs"] == pytest.approx(159.6e9, rel=0.02)
    assert list(summary["modules"]) == ["backbone"] + [f"stage{t}" for t in range(1, 7)]
    # Same backbone and first stage as ftnet.
    ftnet = meta_summary("ftnet")["modules"]
    assert summary["modules"]["backbone"] == ftnet["backbone"]
    assert summary["modules"]["stage1"] == ftnet["branches"]


def test_macs_are_counted_not_estimated():
    """A known answer: one 3x3 conv 3->64 at 368x432 is 3*64*9*368*432 MACs."""
    summary = meta_summary("openpose")
    conv1_1 = 3 * 64 * 9 * 368 * 432
    assert summary["module_macs"]["backbone"] > conv1_1
    with torch.device("meta"):
        model = create_model("openpose", stages=1)
    stage1_only = summarize(model, PAPER_INPUT)
    # stages 2..6 are identical: each adds the same MACs, all at stride 8 (46x54 cells)
    per_stage = (summary["macs"] - stage1_only["macs"]) // 5
    assert per_stage == summary["module_macs"]["stage2"]
    stage_weights = summary["modules"]["stage2"] - 2 * 128 * 5 - 2 * 128 - NUM_HEATMAPS - NUM_PAFS  # minus biases
    assert per_stage == stage_weights * 46 * 54


def test_ablations_change_only_what_they_remove():
    full = meta_summary("ftnet")
    no_transfer = meta_summary("ftnet", transfer_from=None)
    no_refinement = meta_summary("ftnet", refinement=False)
    assert full["params"] - no_transfer["params"] == full["modules"]["transfer"]
    assert full["params"] - no_refinement["params"] == full["modules"]["refinement"]
    # "removing the relevant feature transfer layers while keeping all other structures and
    # parameters the same" (paper §4.6.2): every other weight has the same name and shape.
    with torch.device("meta"):
        full_state = create_model("ftnet").state_dict()
        reduced_state = create_model("ftnet", transfer_from=None).state_dict()
    kept = {k: v.shape for k, v in full_state.items() if not k.startswith("transfer.")}
    assert kept == {k: v.shape for k, v in reduced_state.items()}


@pytest.mark.parametrize("options", ABLATIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_full_width_ablations_build_and_run(options):
    model = create_model("ftnet", **options).eval()
    with torch.no_grad():
        outputs = model(image_batch(32, 48))
    assert len(outputs) == (1 if options.get("refinement") is False else 2)
    for heatmaps, pafs in outputs:
        assert heatmaps.shape == (1, NUM_HEATMAPS, 4, 6)
        assert pafs.shape == (1, NUM_PAFS, 4, 6)
        assert torch.isfinite(heatmaps).all() and torch.isfinite(pafs).all()


@pytest.mark.parametrize("name, stages", [("ftnet", 2), ("openpose", 6)])
@pytest.mark.parametrize("height, width", [(8, 8), (64, 48), (96, 200), PAPER_INPUT])
def test_output_shapes(name, stages, height, width):
    model = create_model(name, width_mult=TINY).eval()
    with torch.no_grad():
        outputs = model(image_batch(height, width))
    assert len(outputs) == stages
    for heatmaps, pafs in outputs:
        assert heatmaps.shape == (1, NUM_HEATMAPS, height // 8, width // 8)
        assert pafs.shape == (1, NUM_PAFS, height // 8, width // 8)


@pytest.mark.parametrize("stages", [1, 6])
def test_full_width_openpose_runs(stages):
    model = create_model("openpose", stages=stages).eval()
    with torch.no_grad():
        outputs = model(image_batch(32, 48))
    assert len(outputs) == stages
    assert [tuple(h.shape) + tuple(p.shape) for h, p in outputs] == [(1, NUM_HEATMAPS, 4, 6, 1, NUM_PAFS, 4, 6)] * stages


@pytest.mark.parametrize("shape, message", [
    ((1, 3, 30, 48), "multiples of 8, got 30x48"),
    ((1, 3, 32, 44), "multiples of 8, got 32x44"),
    ((1, 1, 32, 48), r"expected an input of shape \(B, 3, H, W\)"),
    ((3, 32, 48), r"expected an input of shape \(B, 3, H, W\)"),
])
@pytest.mark.parametrize("name", ["ftnet", "openpose"])
def test_bad_input_shape_is_a_clear_error(name, shape, message):
    model = create_model(name, width_mult=TINY)
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape))


def _first_outputs_after_perturbing_limb_branch(options):
    model = create_model("ftnet", width_mult=TINY, **options).eval()
    x = image_batch(64, 64)
    with torch.no_grad():
        before = model(x)
        model.branches["limb"].conv1.weight.mul_(-1.5)
        after = model(x)
    return before, after


def test_transfer_carries_limb_features_into_the_joint_branch():
    before, after = _first_outputs_after_perturbing_limb_branch({})
    # fresh heads output maps near zero (~1e-7), so compare relatively
    assert not torch.allclose(before[0][0], after[0][0], atol=0)   # pre-refinement heatmaps depend on the limb branch
    before, after = _first_outputs_after_perturbing_limb_branch({"transfer_from": None})
    assert torch.equal(before[0][0], after[0][0])          # without transfer they do not
    assert not torch.allclose(before[1][0], after[1][0], atol=0)   # but the refinement still mixes both


def test_fast_max_pool_gives_exactly_the_reference_pool():
    from ftpose.models.vgg import MaxPool2x2

    from ftpose.files import SAMPLE_PHOTO, read_image
    from ftpose.network_input import network_batch, prepare_network_input

    backbone = create_model("ftnet").backbone.eval()
    x = torch.from_numpy(network_batch([prepare_network_input(read_image(SAMPLE_PHOTO), 128).pixels]))
    with torch.inference_mode():
        relu1_2 = x
        for layer in list(backbone)[:4]:   # conv1_1, relu, conv1_2, relu: activations of a photo, ties at 0
            relu1_2 = layer(relu1_2)
        fast = MaxPool2x2()(relu1_2)
        reference = torch.nn.functional.max_pool2d(relu1_2, 2, 2)
    assert torch.equal(fast, reference)
    with torch.no_grad():            # a tensor needing a gradient takes the reference path
        needs_grad = relu1_2.clone().requires_grad_()
    assert MaxPool2x2()(needs_grad).grad_fn.name().startswith("MaxPool2DWithIndices")
    odd = torch.rand(1, 2, 5, 7)
    assert torch.equal(MaxPool2x2()(odd), torch.nn.functional.max_pool2d(odd, 2, 2))


def test_every_parameter_is_used():
    model = create_model("ftnet", width_mult=TINY)
    outputs = model(image_batch(32, 32))
    sum(h.square().sum() + p.square().sum() for h, p in outputs).backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert unused == []


def test_weights_round_trip_through_safetensors(tmp_path):
    model = create_model("ftnet", width_mult=TINY, transfer_from="conv2").eval()
    path = tmp_path / "tiny.safetensors"
    save_weights(model, path)
    loaded = ftpose.load_model(path)
    assert loaded.model_name == "ftnet" and loaded.model_options == model.model_options
    assert not loaded.training
    x = image_batch(48, 40)
    with torch.no_grad():
        for (h0, p0), (h1, p1) in zip(model(x), loaded(x)):
            assert torch.equal(h0, h1) and torch.equal(p0, p1)


def test_training_checkpoint_loads_without_redownloading(tmp_path, monkeypatch):
    model = create_model("openpose", width_mult=TINY, stages=2)
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "model_name": "openpose", "epoch": 3,
                "model_options": {**model.model_options, "pretrained_backbone": True}}, path)
    monkeypatch.setattr("ftpose.models.vgg.imagenet_vgg16_arrays", lambda: pytest.fail("tried to download"))
    loaded = load_model(path)
    assert count_parameters(loaded) == count_parameters(model)
    assert torch.equal(loaded.stage2.limb.conv7.weight, model.stage2.limb.conv7.weight)


def test_saved_options_are_json_and_never_request_downloads(tmp_path):
    from safetensors import safe_open

    model = create_model("openpose", width_mult=TINY, stages=1)
    model.model_options["pretrained_backbone"] = True  # as if built with ImageNet weights
    save_weights(model, tmp_path / "w.safetensors")
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as f:
        metadata = f.metadata()
    assert metadata["model"] == "openpose"
    assert json.loads(metadata["options"]) == {"stages": 1, "width_mult": TINY, "pretrained_backbone": False}


def test_load_model_errors_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(InputError, match="garbage.pt: neither a safetensors file nor a readable torch checkpoint"):
        load_model(garbage)
    with pytest.raises(InputError, match="missing.safetensors: no such file"):
        load_model(tmp_path / "missing.safetensors")

    from safetensors.torch import save_file
    save_file({"w": torch.zeros(1)}, tmp_path / "plain.safetensors")
    with pytest.raises(InputError, match="plain.safetensors: safetensors file without ftpose metadata"):
        load_model(tmp_path / "plain.safetensors")

    torch.save({"model": create_model("ftnet", width_mult=TINY).state_dict(), "model_name": "ftnet",
                "model_options": {"width_mult": TINY, "refinement": False}}, tmp_path / "mismatch.pt")
    with pytest.raises(InputError, match="mismatch.pt: weights do not fit model 'ftnet'"):
        load_model(tmp_path / "mismatch.pt")

    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="other.pt: torch file is not an ftpose checkpoint"):
        load_model(tmp_path / "other.pt")


def test_parse_options():
    assert parse_options(["transfer_from=conv3", "refinement=false", "width-mult=0.5", "stages=3"]) == {
        "transfer_from": "conv3", "refinement": False, "width_mult": 0.5, "stages": 3}
    assert parse_options(["transfer_from=none"]) == {"transfer_from": None}
    with pytest.raises(ValueError, match="not of the form KEY=VALUE"):
        parse_options(["refinement"])
