"""Predictor geometry: keypoints must come back at the right original-image pixels.

The network is replaced by a perfect "marker detector": it finds where the image
lies inside its padded input (and whether that input is mirrored), places the known
people there independently of the predictor's code, and returns the encoder's
ground-truth maps for them.  With random weights the maps would be meaningless, so
this is how the preprocessing, multi-scale merging, flip and the transform back to
the original image are checked against known answers.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from ftpose.keypoints import COCO17, NETWORK, convert, upright_person
from ftpose.predictor import MULTI_SCALES, Predictor, UntrainedNetworkWarning
from marker_network import MarkerNetwork, to_relative, two_halves_image


def marker(truth: np.ndarray, height: int, width: int) -> MarkerNetwork:
    """A perfect network that sees ``truth`` (image pixels) in a ``height x width`` image."""
    return MarkerNetwork(to_relative(truth, height, width), detect_mirroring=True)


def joint_errors(found: np.ndarray, truth: np.ndarray, height: int) -> np.ndarray:
    """``(x, y)`` errors of every true joint, in network-input pixels at scale 1.0.

    Each true person is compared with the found person closest to it; every joint
    must have been found.
    """
    errors = []
    for person in truth:
        best = found[np.argmin(np.linalg.norm(found[:, :, :2] - person[None, :, :2], axis=2).mean(1))]
        assert np.all(best[:, 2] > 0), "a joint is missing"
        errors.append(best[:, :2] - person[:, :2])
    return np.concatenate(errors) * 368 / height


def assert_close_to_truth(found, truth, height, exact: bool):
    errors = joint_errors(found, truth, height)
    if exact:
        # on the network's own grid nothing is resampled: float32 rounding only
        assert np.abs(errors).max() < 1e-3
    else:
        # Cubic resampling moves a Gaussian peak by a fraction of a pixel, but without
        # bias; a half-pixel slip in any coordinate convention would show in the mean.
        assert np.abs(errors).max() < 0.5
        assert np.abs(errors.mean(0)).max() < 0.1


@pytest.mark.parametrize("height, width", [(301, 517), (450, 237), (1000, 1333)])
@pytest.mark.parametrize("scales, flip", [((1.0,), False), ((1.0,), True), (MULTI_SCALES, False)])
def test_keypoints_come_back_in_original_pixels(height, width, scales, flip):
    truth = np.stack([upright_person(0.3 * width, 0.1 * height, 0.8 * height),
                      upright_person(0.7 * width, 0.2 * height, 0.6 * height)])
    network = marker(truth, height, width)
    people = Predictor(network, scales=scales, flip=flip).predict(two_halves_image(height, width))
    assert len(people) == 2
    assert_close_to_truth(people.keypoints, truth, height, exact=scales == (1.0,))
    for shape in network.inputs:
        assert shape[2] % 8 == 0 and shape[3] % 8 == 0
    assert len(network.inputs) == len(scales)           # one batch per scale
    assert network.inputs[0][0] == (2 if flip else 1)   # the mirror shares the batch


def test_flip_gives_the_same_people():
    height, width = 333, 479
    truth = np.stack([upright_person(150, 30, 280), upright_person(330, 60, 240)])
    plain = Predictor(marker(truth, height, width)).predict(two_halves_image(height, width))
    flipped = Predictor(marker(truth, height, width), flip=True).predict(two_halves_image(height, width))
    assert len(plain) == len(flipped) == 2
    np.testing.assert_allclose(flipped.keypoints[:, :, :2], plain.keypoints[:, :, :2], atol=0.1)


def test_input_height_follows_scale_and_aspect():
    height, width = 301, 517
    network = MarkerNetwork(np.zeros((0, 18, 3)))
    Predictor(network, scales=(0.5, 1.0, 2.0)).predict(two_halves_image(height, width))
    # height 368 * s rounded, width kept in proportion, both padded up to multiples of 8
    assert network.inputs == [(1, 3, 184, 320), (1, 3, 368, 632), (1, 3, 736, 1264)]


def test_decode_stride_trades_resolution_not_geometry():
    height, width = 301, 517
    truth = upright_person(200, 20, 250)[None]
    for decode_stride in (8, 4, 1):
        predictor = Predictor(marker(truth, height, width), decode_stride=decode_stride)
        maps = predictor.maps(two_halves_image(height, width))
        assert maps.heatmaps.shape == (19, 368 // decode_stride, 632 // decode_stride)
        assert maps.pafs.shape == (38,) + maps.heatmaps.shape[1:]
        assert_close_to_truth(predictor.decode(maps).keypoints, truth, height, exact=decode_stride == 8)
    # by default the grid follows the largest scale's output: cells of 8 / 1.5 input pixels
    maps = Predictor(marker(truth, height, width), scales=MULTI_SCALES).maps(two_halves_image(height, width))
    assert maps.heatmaps.shape[1:] == (69, 119)


def test_batch_of_mixed_sizes_equals_one_by_one():
    sizes = [(301, 517), (301, 517), (240, 320)]
    truth = upright_person(100, 20, 200)[None]
    images = [two_halves_image(h, w) for h, w in sizes]
    # one network per image size, each knowing its own image's geometry
    for (h, w), image in zip(sizes, images):
        predictor = Predictor(marker(truth, h, w), batch_size=2)
        alone = predictor.predict(image)
        together = predictor.predict_batch([image, image, image])
        assert all(np.array_equal(p.keypoints, alone.keypoints) for p in together)


def test_empty_image_gives_no_people():
    people = Predictor(MarkerNetwork(np.zeros((0, 18, 3)))).predict(two_halves_image(200, 300))
    assert len(people) == 0 and people.keypoints.shape == (0, 18, 3)


def test_rejects_images_that_are_not_bgr_uint8():
    predictor = Predictor(MarkerNetwork(np.zeros((0, 18, 3))))
    with pytest.raises(ValueError, match="uint8 BGR"):
        predictor.predict(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8 BGR"):
        predictor.predict(np.zeros((10, 10, 3), np.float32))


def test_perfect_maps_of_real_annotations_score_like_the_oracle(shared_data):
    """End to end on real COCO people: perfect maps through the predictor reach AP >= 0.9."""
    from ftpose.data.coco import load_coco_annotations
    from ftpose.evaluation.coco import evaluate_coco

    coco = load_coco_annotations(shared_data / "coco8_pose" / "person_keypoints_train.json")
    results = []
    for image_id in coco.getImgIds():
        info = coco.imgs[image_id]
        anns = [a for a in coco.imgToAnns[image_id] if a["num_keypoints"] > 0 and not a["iscrowd"]]
        truth = convert(np.array([a["keypoints"] for a in anns], float).reshape(-1, 17, 3), COCO17, NETWORK)
        network = marker(truth, info["height"], info["width"])
        people = Predictor(network).predict(two_halves_image(info["height"], info["width"]))
        results += people.coco_results(image_id)
    assert evaluate_coco(coco, results)["AP"] >= 0.9


def test_untrained_network_warns(monkeypatch):
    from ftpose import models

    monkeypatch.setattr(models, "create_model", lambda name, **options: MarkerNetwork(np.zeros((0, 18, 3))))
    with pytest.warns(UntrainedNetworkWarning, match="untrained"):
        predictor = Predictor("no-such-shipped-weights")
    assert not predictor.trained
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Predictor(MarkerNetwork(np.zeros((0, 18, 3)))).trained
