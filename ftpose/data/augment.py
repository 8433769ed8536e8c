"""Person-centric sampling and augmentation (paper §4.3, OpenPose's training recipe).

A crop is one affine map from the image to a ``size x size`` patch: the chosen
person's centre goes to the patch centre (plus a random shift), the image is scaled
so that the person is ``person_height * size`` pixels tall (0.6 x 368 = ~220 px)
times a random factor, rotated by a random angle about that centre, and optionally
mirrored.  The same matrix warps the image, the keypoints and the full-resolution
ignore mask, so they cannot disagree.  Coordinates follow docs/DEVELOPING.md: pixel
centres at integers, which is also the convention of ``cv2.warpAffine``'s matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ftpose.keypoints import NETWORK
from ftpose.network_input import PAD_VALUE


@dataclass(frozen=True)
class AugmentConfig:
    """Random crop parameters; the defaults are the paper's / OpenPose's."""

    input_size: int = 368         # square crop side, a multiple of the stride
    person_height: float = 0.6    # chosen person's height as a fraction of input_size
    scale_min: float = 0.5        # random factor on top of that
    scale_max: float = 1.1
    max_rotation: float = 40.0    # degrees, uniform in [-max, max]
    max_shift: float = 40.0       # crop-centre jitter in crop pixels, per axis
    flip_probability: float = 0.5

    def __post_init__(self):
        if self.input_size <= 0 or self.input_size % 8:
            raise ValueError(f"input_size must be a positive multiple of 8, got {self.input_size}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(f"need 0 < scale_min <= scale_max, got {self.scale_min}, {self.scale_max}")
        if not 0 <= self.flip_probability <= 1:
            raise ValueError(f"flip_probability must be in [0, 1], got {self.flip_probability}")


@dataclass(frozen=True)
class CropTransform:
    """``matrix`` (2x3) maps image to crop coordinates; ``flipped`` mirrors the crop after it."""

    matrix: np.ndarray
    flipped: bool
    size: int

    @property
    def image_matrix(self) -> np.ndarray:
        """The matrix for warping pixels: ``matrix`` followed by the mirror, if any."""
        if not self.flipped:
            return self.matrix
        mirror = np.array([[-1.0, 0.0, self.size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        return (mirror @ np.vstack([self.matrix, [0.0, 0.0, 1.0]]))[:2]

    def keypoints(self, keypoints: np.ndarray) -> np.ndarray:
        """Map ``(N, 18, 3)`` network-layout keypoints into the crop; a flip also swaps left and right."""
        out = keypoints.astype(np.float32, copy=True)
        xy = keypoints[..., :2] @ self.matrix[:, :2].T + self.matrix[:, 2]
        labelled = keypoints[..., 2:3] > 0
        out[..., :2] = np.where(labelled, xy, 0.0)
        return NETWORK.flip(out, self.size) if self.flipped else out

    def image(self, image: np.ndarray) -> np.ndarray:
        """Warp the image into the crop.

        A shrinking warp first averages the image down with ``cv2.INTER_AREA`` (the
        predictor's resize) and warps the rest of the way: bilinear point sampling alone
        would alias, and the network would train on sharper, noisier pixels than it
        sees at test time.  The geometry is the same matrix either way.
        """
        matrix = self.image_matrix
        shrink = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
        if shrink < 0.8:
            height, width = image.shape[:2]
            size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            rx, ry = size[0] / width, size[1] / height
            # pixel-centre resize x' = (x + 0.5) * r - 0.5, undone before the matrix
            undo = np.array([[1 / rx, 0, 0.5 / rx - 0.5], [0, 1 / ry, 0.5 / ry - 0.5], [0, 0, 1]])
            matrix = matrix @ undo
        return cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3)

    def mask(self, mask: np.ndarray) -> np.ndarray:
        """Warp a bool mask; the padding outside the image is not masked (it is real background)."""
        warped = cv2.warpAffine(mask.astype(np.uint8) * 255, self.image_matrix, (self.size, self.size),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return warped >= 128


def crop_transform(center, person_height: float, config: AugmentConfig,
                   rng: np.random.Generator | None = None) -> CropTransform:
    """The crop around one person; ``rng=None`` gives the un-augmented centred crop."""
    size = config.input_size
    scale = config.person_height * size / max(float(person_height), 1.0)
    angle, shift, flipped = 0.0, np.zeros(2), False
    if rng is not None:
        scale *= rng.uniform(config.scale_min, config.scale_max)
        angle = np.deg2rad(rng.uniform(-config.max_rotation, config.max_rotation))
        shift = rng.uniform(-config.max_shift, config.max_shift, 2)
        flipped = bool(rng.random() < config.flip_probability)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]])
    target = np.full(2, (size - 1) / 2.0) + shift   # the crop's centre pixel (pixel-centre coordinates)
    matrix = np.hstack([linear, (target - linear @ np.asarray(center, np.float64))[:, None]])
    return CropTransform(matrix, flipped, size)
