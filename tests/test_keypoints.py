"""The keypoint metadata: conversions round-trip on real annotations, flips are involutions."""
import json

import numpy as np
import pytest

from ftpose import keypoints as K


def _coco_keypoints(path):
    anns = json.loads(path.read_text())["annotations"]
    return np.array([a["keypoints"] for a in anns if a.get("num_keypoints", 1) > 0], float).reshape(-1, 17, 3)


@pytest.mark.parametrize("rel", ["coco_mini/annotations/person_keypoints_train2017.json",
                                 "coco8_pose/person_keypoints_train.json",
                                 "mmpose_fixtures/coco/test_coco.json"])
def test_coco17_openpose18_round_trip(shared_data, rel):
    kp = _coco_keypoints(shared_data / rel)
    op = K.convert(kp, "coco17", "openpose18")
    assert np.array_equal(K.convert(op, "openpose18", "coco17"), kp)
    # the neck is the shoulder midpoint exactly when both shoulders are labelled
    both = (kp[:, 5, 2] > 0) & (kp[:, 6, 2] > 0)
    assert np.array_equal(op[:, 1, 2] > 0, both)
    assert np.allclose(op[both, 1, :2], (kp[both, 5, :2] + kp[both, 6, :2]) / 2)


def test_mpii_round_trip_on_real_annotations(shared_data):
    items = json.loads((shared_data / "mmpose_fixtures/mpii/test_mpii.json").read_text())
    joints = np.array([it["joints"] for it in items], float)
    vis = np.array([it["joints_vis"] for it in items], float)
    mpii = np.concatenate([joints, 2 * vis[..., None]], -1)
    back = K.convert(K.convert(mpii, "mpii16", "openpose18"), "openpose18", "mpii16")
    shared = [K.MPII16.index[n] for n in K.MPII16.keypoints if n in K.OPENPOSE18.index]
    assert len(shared) == 12
    assert np.array_equal(back[:, shared], mpii[:, shared])
    # joints the network has no notion of come back as unlabelled, never invented
    for name in ("head_top", "upper_neck"):
        assert np.all(back[:, K.MPII16.index[name], 2] == 0)


def test_posetrack18_head_slots_are_not_eyes(shared_data):
    data = json.loads((shared_data / "mmpose_fixtures/posetrack18/annotations/test_posetrack18_val.json").read_text())
    kp = np.array([a["keypoints"] for a in data["annotations"]], float).reshape(-1, 17, 3)
    op = K.convert(kp, "posetrack18", "openpose18")
    for eye_or_ear in ("left_eye", "right_eye", "left_ear", "right_ear"):
        assert np.all(op[:, K.OPENPOSE18.index[eye_or_ear], 2] == 0)
    back = K.convert(op, "openpose18", "posetrack18")
    body = list(range(5, 17)) + [0]
    assert np.array_equal(back[:, body], kp[:, body])


@pytest.mark.parametrize("kset", list(K.KEYPOINT_SETS.values()), ids=lambda s: s.name)
def test_flip_is_an_involution_and_swaps_sides(kset):
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0, 100, (4, len(kset), 2)), np.full((4, len(kset), 1), 2.0)], -1)
    assert np.allclose(kset.flip(kset.flip(kp, 100), 100), kp)
    assert kset.flip_pairs, "every layout has left/right pairs"
    for i, j in kset.flip_pairs:
        a, b = sorted([kset.keypoints[i], kset.keypoints[j]])
        assert a.startswith("left_") and b == "right_" + a[5:]


def test_limb_and_map_flip_permutations():
    # flipping maps twice is the identity, and limb k maps to a limb joining the mirrored joints
    perm = K.NETWORK.flip_permutation
    for k, (a, b) in enumerate(K.LIMBS):
        fa, fb = K.LIMBS[K.LIMB_FLIP_PERMUTATION[k]]
        assert {fa, fb} == {perm[a], perm[b]}
    rng = np.random.default_rng(1)
    hm, paf = rng.random((K.NUM_HEATMAPS, 4, 5)), rng.random((K.NUM_PAFS, 4, 5))
    hm2, paf2 = K.flip_maps(*K.flip_maps(hm, paf))
    assert np.allclose(hm2, hm) and np.allclose(paf2, paf)


def test_limb_lengths_and_the_upright_person_are_mirror_symmetric():
    lengths = np.array(K.LIMB_LENGTHS)
    assert len(lengths) == K.NUM_LIMBS and np.all(lengths > 0)
    assert np.array_equal(lengths[K.LIMB_FLIP_PERMUTATION], lengths)
    person = K.upright_person(100.0, 10.0, 200.0)
    mirrored = K.NETWORK.flip(person, 201.0)       # about x = 100, the person's midline
    assert np.allclose(mirrored, person)


def test_convert_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="coco17"):
        K.convert(np.zeros((2, 18, 3)), "coco17", "openpose18")
