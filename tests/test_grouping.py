"""Decoder: known answers on maps drawn by the encoder, flips, ties, empty images."""
from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from conftest import ROOT
from ftpose.data.coco import load_coco_annotations
from ftpose.grouping import GroupingParams, People, decode, find_peaks
from ftpose.keypoints import COCO17, NETWORK, NUM_PARTS, convert, flip_maps
from ftpose.targets import encode

# A person facing the camera, 160 px tall, with typical proportions, relative to the hip centre.
STANDING = {
    "nose": (0, -68), "neck": (0, -50), "right_shoulder": (-20, -50), "right_elbow": (-24, -22),
    "right_wrist": (-27, 3), "left_shoulder": (20, -50), "left_elbow": (24, -22),
    "left_wrist": (27, 3), "right_hip": (-12, 0), "right_knee": (-13, 40), "right_ankle": (-14, 80),
    "left_hip": (12, 0), "left_knee": (13, 40), "left_ankle": (14, 80), "right_eye": (-5, -72),
    "left_eye": (5, -72), "right_ear": (-10, -70), "left_ear": (10, -70),
}


def person(x: float, y: float, **moved) -> np.ndarray:
    """A standing person centred at ``(x, y)``; ``moved`` overrides joints (absolute, None = unlabelled)."""
    kp = np.zeros((NUM_PARTS, 3), np.float32)
    for name, (dx, dy) in STANDING.items():
        kp[NETWORK.index[name]] = (x + dx, y + dy, 2)
    for name, xy in moved.items():
        kp[NETWORK.index[name]] = (*xy, 2) if xy is not None else (0, 0, 0)
    return kp


def round_trip(keypoints: np.ndarray, height: int, width: int, params=None) -> People:
    heatmaps, pafs = encode(keypoints, height, width)
    return decode(heatmaps, pafs, params).scaled(8)


def assert_same_people(found: People, expected: np.ndarray, atol: float = 0.05):
    """``found`` holds exactly the people of ``expected`` (any order), joints within ``atol`` px."""
    assert len(found) == len(expected)
    for kp in expected:
        labelled = kp[:, 2] > 0
        match = [p for p in found.keypoints if np.array_equal(p[:, 2] > 0, labelled)
                 and np.allclose(p[labelled, :2], kp[labelled, :2], atol=atol)]
        assert len(match) == 1, f"no decoded person matches {kp[labelled, :2].tolist()}"


def test_one_person_comes_back_exactly_with_sub_pixel_joints():
    kp = person(101.3, 150.6)[None]
    people = round_trip(kp, 260, 200)
    assert_same_people(people, kp, atol=0.02)
    assert people.keypoints.dtype == np.float32 and people.scores.dtype == np.float32
    assert 0.9 < people.scores[0] <= 1.0


def test_heatmap_peaks_land_on_the_drawn_joints_including_the_map_edges():
    rng = np.random.default_rng(1)
    joints = np.c_[rng.uniform(0, 319, 60), rng.uniform(0, 239, 60), np.full(60, 2.0)]
    joints[:4, :2] = [[0, 100], [319, 50], [150, 0], [60, 239]]   # on the image border
    for joint in joints:
        kp = np.zeros((1, NUM_PARTS, 3))
        kp[0, 0] = joint
        heatmaps, _ = encode(kp, 240, 320)
        parts, xy, value = find_peaks(heatmaps[:NUM_PARTS], 0.1)
        assert parts.tolist() == [0]
        np.testing.assert_allclose((xy[0] + 0.5) * 8 - 0.5, joint[:2], atol=1e-3)


@pytest.mark.parametrize("plateau", [[(3, 3), (3, 4)], [(3, 3), (3, 4), (4, 3), (4, 4)],
                                     [(2, 3), (3, 3), (4, 3)], [(2, 2), (3, 3), (3, 2), (4, 3)]])
def test_a_flat_top_gives_exactly_one_peak(plateau):
    # A bump that falls off with the distance from a set of cells that tie exactly.
    rows, cols = np.mgrid[:8, :8]
    distance = np.min([np.abs(rows - r) + np.abs(cols - c) for r, c in plateau], axis=0)
    heatmaps = np.zeros((NUM_PARTS, 8, 8), np.float32)
    heatmaps[0] = np.maximum(0.9 - 0.2 * distance, 0)
    parts, xy, value = find_peaks(heatmaps, 0.1)
    assert parts.tolist() == [0] and value.tolist() == [pytest.approx(0.9)]
    assert np.abs(xy[0] - np.array(plateau)[:, ::-1]).max(axis=1).min() <= 0.5


def test_two_people_with_crossing_arms_are_not_merged():
    # A's left arm reaches right across B's right arm, which reaches left.
    a = person(100, 150, left_elbow=(140, 85), left_wrist=(185, 95))
    b = person(160, 150, right_elbow=(125, 90), right_wrist=(80, 80))
    kp = np.stack([a, b])
    assert_same_people(round_trip(kp, 280, 280), kp)


def test_person_without_a_neck_stays_in_one_piece():
    # One shoulder unlabelled: COCO gives no neck, so no limb joins the legs to the rest.
    kp = np.stack([person(100, 150, left_shoulder=None, neck=None), person(220, 150)])
    people = round_trip(kp, 280, 320)
    assert_same_people(people, kp)
    assert people.scores[0] > people.scores[1]   # the complete person ranks first


def test_people_with_gaps_in_their_skeletons_keep_every_joint():
    # No elbow (the wrist has no limb) and no hips' knees: every joint is still assigned.
    kp = np.stack([person(100, 150, right_elbow=None, left_knee=None, neck=None, right_shoulder=None),
                   person(230, 150, right_hip=None)])
    assert_same_people(round_trip(kp, 280, 320), kp)


def test_flipping_the_image_and_flipping_the_maps_back_gives_the_same_people():
    kp = np.stack([person(90.2, 140.7), person(170.6, 150.1, left_wrist=(240.0, 60.0), neck=None,
                                                    left_shoulder=None)])
    width = 320  # a multiple of the stride, so that flipping the maps flips the image grid
    heatmaps, pafs = encode(NETWORK.flip(kp, width), 280, width)
    unflipped = decode(*flip_maps(heatmaps, pafs)).scaled(8)
    direct = round_trip(kp, 280, width)
    assert_same_people(unflipped, kp)
    np.testing.assert_allclose(unflipped.keypoints, direct.keypoints, atol=1e-3)
    np.testing.assert_allclose(unflipped.scores, direct.scores, atol=1e-5)


def test_an_image_without_people_gives_an_empty_result():
    heatmaps, pafs = encode(np.zeros((0, NUM_PARTS, 3)), 368, 496)
    people = decode(heatmaps, pafs)
    assert len(people) == 0 and people.keypoints.shape == (0, NUM_PARTS, 3)
    assert people.to_coco17().shape == (0, 17, 3) and people.coco_results(7) == []
    assert len(decode(np.zeros((19, 1, 1)), np.zeros((38, 1, 1)))) == 0


def test_decoding_upsampled_maps_finds_the_same_people_in_their_own_pixels():
    kp = np.stack([person(100.0, 150.0), person(200.0, 140.0, neck=None, right_shoulder=None)])
    heatmaps, pafs = encode(kp, 280, 304)
    big = [cv2.resize(m.transpose(1, 2, 0), (304, 280), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)
           for m in (heatmaps, pafs)]
    assert_same_people(decode(*big), kp, atol=1.0)


def test_noise_maps_are_decoded_with_a_bounded_number_of_peaks():
    # Maps of an untrained network are noise; the peak cap keeps the work bounded.
    rng = np.random.default_rng(0)
    heatmaps = rng.uniform(0, 1, (19, 46, 62)).astype(np.float32)
    pafs = rng.uniform(-1, 1, (38, 46, 62)).astype(np.float32)
    people = decode(heatmaps, pafs, GroupingParams(max_peaks=16))
    assert (people.keypoints[..., 2] > 0).sum(axis=0).max() == 16
    assert np.all(np.diff(people.scores) <= 0)


def test_scaled_and_coco17_follow_the_coordinate_conventions():
    kp = np.zeros((1, NUM_PARTS, 3), np.float32)
    kp[0, NETWORK.index["nose"]] = (2.0, 3.0, 0.8)
    kp[0, NETWORK.index["neck"]] = (4.0, 5.0, 0.9)
    people = People(kp, np.array([0.5], np.float32)).scaled(8, 4)
    assert people.keypoints[0, NETWORK.index["nose"]].tolist() == [19.5, 13.5, pytest.approx(0.8)]
    assert not people.keypoints[0, NETWORK.index["left_eye"]].any()     # missing stays zero
    coco = people.to_coco17()
    assert coco.shape == (1, 17, 3) and coco[0, COCO17.index["nose"]].tolist() == [19.5, 13.5, pytest.approx(0.8)]
    record = people.coco_results(42)[0]
    assert record["image_id"] == 42 and record["category_id"] == 1 and len(record["keypoints"]) == 51


def test_decode_rejects_maps_of_the_wrong_shape():
    with pytest.raises(ValueError, match="expected heatmaps"):
        decode(np.zeros((19, 4, 4)), np.zeros((38, 4, 5)))
    with pytest.raises(ValueError, match="expected heatmaps"):
        decode(np.zeros((4, 4)), np.zeros((38, 4, 4)))


def test_min_parts_drops_small_fragments():
    kp = np.stack([person(100, 150), person(220, 150)])
    kp[1, :, 2] = 0
    kp[1, NETWORK.index["nose"], 2] = 2     # a lone nose
    assert len(round_trip(kp, 280, 320)) == 2
    assert len(round_trip(kp, 280, 320, GroupingParams(min_parts=3))) == 1


def test_the_plain_python_benchmark_decoder_agrees_with_the_vectorised_one(shared_data):
    spec = importlib.util.spec_from_file_location("decoding_speed", ROOT / "benchmarks" / "decoding_speed.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    coco = load_coco_annotations(shared_data / "coco_mini/annotations/person_keypoints_train2017.json")
    for image_id in (129648, 227000, 370162):   # the most crowded images
        image = coco.imgs[image_id]
        anns = [a for a in coco.imgToAnns[image_id] if a["num_keypoints"] > 0 and not a["iscrowd"]]
        kp = convert(np.array([a["keypoints"] for a in anns], float).reshape(-1, 17, 3), COCO17, NETWORK)
        heatmaps, pafs = encode(kp, image["height"], image["width"])
        fast, slow = decode(heatmaps, pafs), benchmark.decode_with_loops(heatmaps, pafs)
        assert_same_people(slow, fast.keypoints, atol=1e-4)    # people of equal score may swap places
        np.testing.assert_allclose(slow.scores, fast.scores, atol=1e-5)
