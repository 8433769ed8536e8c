"""Person-centric crops: one transform for image, keypoints and mask, pixel-centre exact."""
from __future__ import annotations

import numpy as np
import pytest

from ftpose.data import AugmentConfig, DataSpec, build_dataset, crop_transform
from ftpose.data.augment import CropTransform
from ftpose.keypoints import NETWORK


def _blob(shape, x, y, sigma=2.5):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))


def _centroid(image):
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]]
    total = image.sum()
    return np.array([(xx * image).sum() / total, (yy * image).sum() / total])


def test_unaugmented_crop_centres_and_scales_the_person():
    config = AugmentConfig(input_size=368)
    t = crop_transform((250.0, 300.0), 440.0, config)
    kps = np.zeros((1, 18, 3), np.float32)
    kps[0, 0] = (250, 300 - 220, 2)   # 220 px above the centre
    kps[0, 1] = (250, 300, 2)
    out = t.keypoints(kps)
    np.testing.assert_allclose(out[0, 1, :2], (183.5, 183.5), atol=1e-4)   # the crop's centre pixel
    # 0.6 * 368 / 440 = 0.5018...: the person's 440 px become 220.8 px
    np.testing.assert_allclose(out[0, 0, :2], (183.5, 183.5 - 220 * 0.6 * 368 / 440), atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_image_keypoints_and_mask_move_together(seed):
    """A Gaussian blob drawn at a keypoint lands where the keypoint lands, flips and rotations included."""
    config = AugmentConfig(input_size=96, scale_min=0.9, scale_max=1.1, flip_probability=0.5)
    rng = np.random.default_rng(seed)
    size = (120, 160)
    x, y = 70.3 + 5 * seed, 58.7
    t = crop_transform((80.0, 60.0), 110.0, config, rng)
    image = np.dstack([_blob(size, x, y) * 255] * 3).astype(np.float32)
    warped = (t.image(image) - t.image(np.zeros_like(image)))[..., 0].astype(np.float64)  # minus the padding
    kps = np.zeros((1, 18, 3), np.float32)
    side = NETWORK.index["left_wrist"]
    kps[0, side] = (x, y, 2)
    out = t.keypoints(kps)
    # a flip relabels the left wrist as the right one: mirror image, mirror name
    moved = NETWORK.flip_permutation[side] if t.flipped else side
    assert out[0, moved, 2] == 2 and (t.flipped is False or out[0, side, 2] == 0)
    np.testing.assert_allclose(_centroid(warped), out[0, moved, :2], atol=0.05)

    cx, cy = round(x), round(y)
    mask = np.zeros(size, bool)
    mask[cy - 6:cy + 7, cx - 6:cx + 7] = True   # a 13x13 square centred on pixel (cx, cy)
    warped_mask = t.mask(mask).astype(np.float64)
    centre = t.image_matrix @ np.array([cx, cy, 1.0])
    np.testing.assert_allclose(_centroid(warped_mask), centre, atol=0.3)


def test_flip_mirrors_the_unflipped_crop():
    config = AugmentConfig(input_size=64)
    base = crop_transform((40.0, 30.0), 50.0, config)
    flipped = CropTransform(base.matrix, True, base.size)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    # equal up to the rounding of warpAffine's fixed-point interpolation weights
    difference = np.abs(flipped.image(image).astype(int) - base.image(image)[:, ::-1])
    assert difference.max() <= 1 and difference.mean() < 0.01
    kps = np.zeros((1, 18, 3), np.float32)
    kps[0, :, :2] = rng.uniform(0, 60, (18, 2))
    kps[0, :, 2] = 2
    np.testing.assert_allclose(flipped.keypoints(kps), NETWORK.flip(base.keypoints(kps), 64), atol=1e-5)


def test_padding_is_grey_and_not_ignored():
    t = crop_transform((10.0, 10.0), 400.0, AugmentConfig(input_size=64))  # tiny scale: mostly padding
    crop = t.image(np.zeros((20, 20, 3), np.uint8))
    assert (crop[0, 0] == 128).all()
    assert not t.mask(np.ones((20, 20), bool))[0, 0]


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="multiple of 8"):
        AugmentConfig(input_size=100)
    with pytest.raises(ValueError, match="scale_min <= scale_max"):
        AugmentConfig(scale_min=1.2, scale_max=1.1)


def test_real_samples_have_targets_on_the_keypoints_and_masked_crowds(shared_data):
    root = shared_data / "coco_mini"
    dataset = build_dataset([DataSpec("coco", str(root / "annotations/person_keypoints_train2017.json"),
                                      str(root / "train2017"))])
    part = dataset.datasets[0]
    crowd_images = {i for i, im in enumerate(part.images) if any(r.get("iscrowd") for r in im.ignore)}
    index = next(k for k, (i, _) in enumerate(part.anchors) if i in crowd_images)
    sample = dataset.sample(index, seed=None)     # the plain centred crop
    assert sample.image.shape == (368, 368, 3) and sample.heatmaps.shape == (19, 46, 46)
    assert sample.weight.min() < 0.5              # some crowd or unannotated person is masked
    inside = (sample.keypoints[..., 2] > 0) & (sample.keypoints[..., :2] > 16).all(-1) \
        & (sample.keypoints[..., :2] < 368 - 16).all(-1)
    for person, joint in zip(*np.nonzero(inside)):
        x, y = sample.keypoints[person, joint, :2]
        cell = np.round((np.array([x, y]) + 0.5) / 8 - 0.5).astype(int)
        assert sample.heatmaps[joint, cell[1], cell[0]] > 0.6   # a Gaussian peak sits on every joint

    again = dataset.sample(index, seed=123)
    np.testing.assert_array_equal(again.image, dataset.sample(index, seed=123).image)
    assert not np.array_equal(again.image, dataset.sample(index, seed=124).image)
