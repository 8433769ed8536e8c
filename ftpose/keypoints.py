"""Keypoint and limb metadata: the single source of truth for every other module.

The network predicts the OpenPose COCO-18 layout (18 parts + a background heatmap,
19 limbs as part affinity fields).  Datasets and evaluation protocols use other
layouts (COCO-17, MPII-16, PoseTrack 2017/2018).  Every layout names its joints from
one shared vocabulary, so conversions are name lookups: a joint present in both
layouts is copied exactly, a joint missing from the source is *derived* only where
a fixed rule exists (the OpenPose neck is the midpoint of the shoulders, as COCO has
no neck), and anything else is marked absent (visibility 0) so it is neither drawn
nor penalised.

Keypoint arrays are ``(..., K, 3)`` float arrays of ``(x, y, v)``; ``v`` follows COCO
(0 unlabelled, 1 labelled but occluded, 2 visible).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _mirror(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


@dataclass(frozen=True)
class KeypointSet:
    """One keypoint layout: names in order, drawing skeleton, optional OKS sigmas."""

    name: str
    keypoints: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] | None = None
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "index", {n: i for i, n in enumerate(self.keypoints)})
        if len(self.index) != len(self.keypoints):
            raise ValueError(f"{self.name}: duplicate keypoint names")
        if self.sigmas is not None and len(self.sigmas) != len(self.keypoints):
            raise ValueError(f"{self.name}: {len(self.sigmas)} sigmas for {len(self.keypoints)} keypoints")

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def flip_permutation(self) -> np.ndarray:
        """``perm[i]`` = index of the mirror joint of ``i`` (itself for centre joints)."""
        return np.array([self.index.get(_mirror(n), i) for i, n in enumerate(self.keypoints)])

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        perm = self.flip_permutation
        return tuple((i, int(j)) for i, j in enumerate(perm) if i < j)

    def flip(self, keypoints: np.ndarray, width: float) -> np.ndarray:
        """Mirror ``(..., K, 3)`` keypoints horizontally in an image ``width`` pixels wide.

        Uses the pixel-centre convention (``x -> width - 1 - x``) so flipping an image
        array with ``[:, ::-1]`` and flipping its keypoints stay aligned.
        """
        out = keypoints[..., self.flip_permutation, :].copy()
        labelled = out[..., 2] > 0
        out[..., 0] = np.where(labelled, width - 1 - out[..., 0], out[..., 0])
        return out


# --- the layouts -------------------------------------------------------------------

COCO17 = KeypointSet(
    "coco17",
    ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
     "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
     "left_wrist", "right_wrist", "left_hip", "right_hip",
     "left_knee", "right_knee", "left_ankle", "right_ankle"),
    skeleton=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12),
              (5, 6), (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2),
              (1, 3), (2, 4), (3, 5), (4, 6)),
    # pycocotools' COCOeval.kpt_oks_sigmas
    sigmas=(.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062,
            .107, .107, .087, .087, .089, .089),
)

# Limbs of the OpenPose COCO-18 layout.  The order fixes the PAF channels: limb k
# occupies channels 2k (x component) and 2k+1 (y component).
_OPENPOSE18_LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9),
                     (9, 10), (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16),
                     (0, 15), (15, 17), (2, 16), (5, 17))

OPENPOSE18 = KeypointSet(
    "openpose18",
    ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
     "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
     "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
     "left_eye", "right_ear", "left_ear"),
    skeleton=_OPENPOSE18_LIMBS[:17],  # the two shoulder-ear limbs are redundant for drawing
    # COCO sigmas by name; the neck borrows the shoulders' value.
    sigmas=(.026, .079, .079, .072, .062, .079, .072, .062, .107, .087, .089,
            .107, .087, .089, .025, .025, .035, .035),
)

MPII16 = KeypointSet(
    "mpii16",
    ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
     "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
     "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"),
    skeleton=((0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
              (10, 11), (11, 12), (12, 7), (7, 13), (13, 14), (14, 15)),
)

# PoseTrack 2017 (15 joints, the order of its evaluation tool).  Its "head_bottom" is
# the bottom of the head (upper neck), not OpenPose's shoulder-midpoint neck.
POSETRACK17 = KeypointSet(
    "posetrack17",
    ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
     "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
     "left_wrist", "head_bottom", "nose", "head_top"),
    skeleton=((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 12), (12, 9),
              (9, 10), (10, 11), (12, 13), (13, 14), (8, 2), (9, 3)),
)

# PoseTrack 2018: COCO's 17 slots, but slot 1/2 (the eyes) hold head_bottom/head_top
# and the ears (3/4) are never annotated.
POSETRACK18 = KeypointSet(
    "posetrack18",
    ("nose", "head_bottom", "head_top", "unused_left_ear", "unused_right_ear") + COCO17.keypoints[5:],
    skeleton=COCO17.skeleton[:12] + ((0, 1), (1, 2), (1, 5), (1, 6)),   # COCO's body, PoseTrack's head
)

KEYPOINT_SETS: dict[str, KeypointSet] = {
    s.name: s for s in (OPENPOSE18, COCO17, MPII16, POSETRACK17, POSETRACK18)
}

# The network's native layout.
NETWORK = OPENPOSE18
NUM_PARTS = len(NETWORK)             # 18
NUM_HEATMAPS = NUM_PARTS + 1         # + background, the last channel
LIMBS: tuple[tuple[int, int], ...] = _OPENPOSE18_LIMBS
NUM_LIMBS = len(LIMBS)               # 19
NUM_PAFS = 2 * NUM_LIMBS             # 38

LIMB_LENGTHS: tuple[float, ...] = (
    0.13, 0.13,                 # neck - shoulders
    0.19, 0.16, 0.19, 0.16,     # shoulder - elbow - wrist, right then left
    0.31, 0.25, 0.25,           # neck - right hip - knee - ankle
    0.31, 0.25, 0.25,           # neck - left hip - knee - ankle
    0.12, 0.04, 0.07, 0.04, 0.07,   # neck - nose, nose - eye - ear (right, left)
    0.13, 0.13)                 # shoulder - ear (right, left)
"""Typical length of each limb of :data:`LIMBS` (same order), as a fraction of body height:
roughly Drillis and Contini's segment lengths, rounded up; the head's are estimates."""

UPRIGHT_PERSON: tuple[tuple[float, float], ...] = (
    (0.0, .09), (0.0, .19), (-.12, .20), (-.15, .34), (-.16, .47), (.12, .20), (.15, .34), (.16, .47),
    (-.07, .50), (-.08, .72), (-.08, .94), (.07, .50), (.08, .72), (.08, .94),
    (-.03, .07), (.03, .07), (-.06, .08), (.06, .08))
"""An upright person facing the camera, in :data:`NETWORK` order: ``(x, y)`` of each joint
in units of the person's height from the top of the head (x from the body's midline)."""


def upright_person(x: float, y: float, height: float, visibility: float = 2.0) -> np.ndarray:
    """``(18, 3)`` keypoints of :data:`UPRIGHT_PERSON` ``height`` tall with the head top at ``(x, y)``."""
    return np.array([(x + dx * height, y + dy * height, visibility) for dx, dy in UPRIGHT_PERSON])


def _limb_flip_permutation() -> np.ndarray:
    perm = NETWORK.flip_permutation
    lookup = {limb: k for k, limb in enumerate(LIMBS)}
    out = []
    for a, b in LIMBS:
        fa, fb = int(perm[a]), int(perm[b])
        out.append(lookup[(fa, fb)] if (fa, fb) in lookup else lookup[(fb, fa)])
    return np.array(out)


LIMB_FLIP_PERMUTATION = _limb_flip_permutation()
HEATMAP_FLIP_PERMUTATION = np.append(NETWORK.flip_permutation, NUM_PARTS)  # background stays
PAF_FLIP_PERMUTATION = np.stack([2 * LIMB_FLIP_PERMUTATION, 2 * LIMB_FLIP_PERMUTATION + 1], 1).ravel()


def flip_maps(heatmaps, pafs):
    """Undo a horizontal flip on network maps ``(..., C, H, W)`` (numpy arrays or torch tensors).

    Mirrors the width axis, swaps left/right parts and limbs, and negates the PAF x
    components (a mirrored limb points the other way horizontally).
    """
    if isinstance(heatmaps, np.ndarray):
        heatmaps = heatmaps[..., HEATMAP_FLIP_PERMUTATION, :, ::-1]
        pafs = pafs[..., PAF_FLIP_PERMUTATION, :, ::-1].copy()
    else:  # torch tensors; imported lazily so the metadata stays torch-free
        import torch
        heatmaps = heatmaps[..., torch.as_tensor(HEATMAP_FLIP_PERMUTATION), :, :].flip(-1)
        pafs = pafs[..., torch.as_tensor(PAF_FLIP_PERMUTATION), :, :].flip(-1)
    pafs[..., 0::2, :, :] *= -1
    return heatmaps, pafs


# Joints that a layout lacks but can be computed exactly from others by definition.
DERIVED_JOINTS: dict[str, tuple[str, ...]] = {
    "neck": ("left_shoulder", "right_shoulder"),   # OpenPose's definition for COCO
    "thorax": ("left_shoulder", "right_shoulder"), # MPII thorax ~ shoulder midpoint
    "pelvis": ("left_hip", "right_hip"),
}


def convert(keypoints: np.ndarray, src: str | KeypointSet, dst: str | KeypointSet) -> np.ndarray:
    """Convert ``(..., K_src, 3)`` keypoints from layout ``src`` to ``dst``.

    Shared joints are copied; joints in :data:`DERIVED_JOINTS` are the mean of their
    source joints when all are labelled (visibility = the lowest of theirs); every
    other joint of ``dst`` gets ``(0, 0, 0)``.
    """
    src = KEYPOINT_SETS[src] if isinstance(src, str) else src
    dst = KEYPOINT_SETS[dst] if isinstance(dst, str) else dst
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape[-2:] != (len(src), 3):
        raise ValueError(f"expected keypoints of shape (..., {len(src)}, 3) for {src.name}, got {keypoints.shape}")
    out = np.zeros(keypoints.shape[:-2] + (len(dst), 3))
    for j, name in enumerate(dst.keypoints):
        if name in src.index:
            out[..., j, :] = keypoints[..., src.index[name], :]
        elif name in DERIVED_JOINTS and all(n in src.index for n in DERIVED_JOINTS[name]):
            parts = keypoints[..., [src.index[n] for n in DERIVED_JOINTS[name]], :]
            ok = np.all(parts[..., 2] > 0, axis=-1)
            out[..., j, :2] = np.where(ok[..., None], parts[..., :2].mean(-2), 0.0)
            out[..., j, 2] = np.where(ok, parts[..., 2].min(-1), 0.0)
    return out
