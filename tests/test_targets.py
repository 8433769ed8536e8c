"""Ground-truth maps: known answers, a brute-force reference, pycocotools masks."""
from __future__ import annotations

import numpy as np
import pytest

from ftpose.data.coco import load_coco_annotations
from ftpose.keypoints import LIMBS, NETWORK, NUM_HEATMAPS, NUM_PAFS, NUM_PARTS
from ftpose.targets import cell_centres, downsample_mask, encode, ignore_mask, map_size

R_SHOULDER, R_ELBOW = NETWORK.index["right_shoulder"], NETWORK.index["right_elbow"]
UPPER_ARM = LIMBS.index((R_SHOULDER, R_ELBOW))


def person(**joints) -> np.ndarray:
    """One ``(18, 3)`` network-layout person from ``name=(x, y)`` keywords, v = 2."""
    kp = np.zeros((NUM_PARTS, 3), np.float32)
    for name, (x, y) in joints.items():
        kp[NETWORK.index[name]] = (x, y, 2)
    return kp


def brute_force_pafs(keypoints, height, width, stride=8, paf_width=8.0):
    """Eq. 2 cell by cell: average of unit vectors of limbs within ``paf_width`` of the cell."""
    h, w = map_size(height, width, stride)
    sums = np.zeros((len(LIMBS), h, w, 2))
    counts = np.zeros((len(LIMBS), h, w))
    for kp in keypoints:
        for k, (i, j) in enumerate(LIMBS):
            if kp[i, 2] <= 0 or kp[j, 2] <= 0:
                continue
            a, b = kp[i, :2].astype(float), kp[j, :2].astype(float)
            length = np.linalg.norm(b - a)
            if length < 1e-3:
                continue
            for y in range(h):
                for x in range(w):
                    p = (np.array([x, y]) + 0.5) * stride - 0.5
                    t = np.clip(np.dot(p - a, b - a) / length ** 2, 0, 1)
                    if np.linalg.norm(p - (a + t * (b - a))) <= paf_width:
                        sums[k, y, x] += (b - a) / length
                        counts[k, y, x] += 1
    mean = sums / np.maximum(counts, 1)[..., None]
    return mean.transpose(0, 3, 1, 2).reshape(NUM_PAFS, h, w)


def test_map_size_rounds_up_and_cells_follow_the_pixel_centre_convention():
    assert map_size(368, 368) == (46, 46)
    assert map_size(399, 640) == (50, 80)
    np.testing.assert_allclose(cell_centres(3, 8), [3.5, 11.5, 19.5])


def test_single_horizontal_limb_has_unit_vectors_exactly_one_cell_wide():
    # Right upper arm from (19.5, 27.5) to (59.5, 27.5): along cell row 3, cells 2..7.
    kp = person(right_shoulder=(19.5, 27.5), right_elbow=(59.5, 27.5))
    _, pafs = encode(kp[None], 64, 80)
    field = pafs[2 * UPPER_ARM:2 * UPPER_ARM + 2]
    expected_x = np.zeros(field.shape[1:])
    expected_x[2:5, 2:8] = 1.0          # rows 2-4: the segment's row and one cell (8 px) either side
    expected_x[3, 1] = expected_x[3, 8] = 1.0  # 8 px beyond each end, on the axis: the capsule's tips
    np.testing.assert_array_equal(field[0], expected_x)
    np.testing.assert_array_equal(field[1], 0.0)
    others = np.delete(pafs, [2 * UPPER_ARM, 2 * UPPER_ARM + 1], axis=0)
    assert not others.any()


def test_pafs_match_a_brute_force_reference_with_overlaps_averaged():
    rng = np.random.default_rng(0)
    kp = np.zeros((3, NUM_PARTS, 3), np.float32)
    kp[..., :2] = rng.uniform(-30, 120, (3, NUM_PARTS, 2))   # some joints outside the image
    kp[..., 2] = rng.choice([0, 1, 2], (3, NUM_PARTS), p=[0.2, 0.3, 0.5])
    _, pafs = encode(kp, 90, 100)
    np.testing.assert_allclose(pafs, brute_force_pafs(kp, 90, 100), atol=1e-5)


def test_crossing_limbs_average_their_directions():
    kp = np.stack([person(right_shoulder=(3.5, 43.5), right_elbow=(83.5, 43.5)),
                   person(right_shoulder=(43.5, 3.5), right_elbow=(43.5, 83.5))])
    _, pafs = encode(kp, 88, 88)
    assert pafs[2 * UPPER_ARM:2 * UPPER_ARM + 2, 5, 5].tolist() == [0.5, 0.5]
    assert pafs[2 * UPPER_ARM:2 * UPPER_ARM + 2, 5, 1].tolist() == [1.0, 0.0]


def test_heatmaps_are_gaussians_at_the_joints_with_max_over_people_and_background():
    kp = np.stack([person(nose=(20.0, 30.0)), person(nose=(30.0, 30.0))])
    heatmaps, _ = encode(kp, 64, 64, sigma=7.0)
    assert heatmaps.shape == (NUM_HEATMAPS, 8, 8) and heatmaps.dtype == np.float32
    xs = cell_centres(8, 8)
    d1 = (xs[None, :] - 20) ** 2 + (xs[:, None] - 30) ** 2
    d2 = (xs[None, :] - 30) ** 2 + (xs[:, None] - 30) ** 2
    expected = np.maximum(np.exp(-d1 / 98), np.exp(-d2 / 98))
    np.testing.assert_allclose(heatmaps[NETWORK.index["nose"]], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(heatmaps[-1], 1 - expected, rtol=1e-5, atol=1e-6)
    assert not np.delete(heatmaps, [NETWORK.index["nose"], NUM_PARTS], axis=0).any()


def test_unlabelled_joints_and_their_limbs_are_not_drawn():
    kp = person(right_shoulder=(20, 20), right_elbow=(50, 20))
    kp[R_ELBOW, 2] = 0
    heatmaps, pafs = encode(kp[None], 64, 64)
    assert heatmaps[R_SHOULDER].max() == pytest.approx(np.exp(-(0.5 ** 2 + 0.5 ** 2) / 98), rel=1e-5)
    assert not heatmaps[R_ELBOW].any() and not pafs.any()


def test_no_people_gives_empty_parts_and_full_background():
    heatmaps, pafs = encode(np.zeros((0, NUM_PARTS, 3)), 368, 496)
    assert heatmaps.shape == (19, 46, 62) and pafs.shape == (38, 46, 62)
    assert not heatmaps[:NUM_PARTS].any() and (heatmaps[NUM_PARTS] == 1).all() and not pafs.any()


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside pycocotools
def test_ignore_mask_equals_pycocotools_masks_of_crowds_and_unlabelled_people(shared_data):
    path = shared_data / "coco_mini/annotations/person_keypoints_train2017.json"
    coco = load_coco_annotations(path)
    checked = 0
    for image_id, anns in coco.imgToAnns.items():
        ignored = [a for a in anns if a["iscrowd"] or a["num_keypoints"] == 0]
        if not ignored:
            continue
        image = coco.imgs[image_id]
        expected = np.zeros((image["height"], image["width"]), bool)
        for a in ignored:
            expected |= coco.annToMask(a).astype(bool)
        np.testing.assert_array_equal(ignore_mask(anns, image["height"], image["width"]), expected)
        checked += 1
    assert checked >= 10


def test_ignore_mask_uses_the_box_without_a_segmentation_and_skips_labelled_people():
    anns = [{"iscrowd": 0, "num_keypoints": 0, "bbox": [2.5, 1, 3, 2], "segmentation": []},
            {"iscrowd": 0, "num_keypoints": 5, "bbox": [0, 0, 10, 10], "segmentation": [[0, 0, 9, 0, 9, 9]]},
            {"iscrowd": 0, "keypoints": [4, 4, 2] + [0] * 48, "bbox": [0, 0, 10, 10]}]  # counted: 1 keypoint
    mask = ignore_mask(anns, 6, 10)
    expected = np.zeros((6, 10), bool)
    expected[1:3, 2:6] = True
    np.testing.assert_array_equal(mask, expected)


def test_downsample_mask_gives_the_covered_fraction_per_cell():
    mask = np.zeros((20, 17), bool)
    mask[:8, :8] = True        # cell (0, 0) fully covered
    mask[8:12, 8:16] = True    # cell (1, 1) half covered
    mask[16:, 16:] = True      # cell (2, 2): 4 of its 64 pixels lie inside the image
    cells = downsample_mask(mask, 8)
    assert cells.shape == (3, 3) and cells.dtype == np.float32
    expected = np.zeros((3, 3))
    expected[0, 0], expected[1, 1], expected[2, 2] = 1.0, 0.5, 4 / 64
    np.testing.assert_allclose(cells, expected)
