"""A stand-in "perfect network" for checking the predictor's geometry on known answers.

With random weights a network's maps are meaningless, so geometry tests replace it
with this module: it finds where the image lies inside its padded input (padding is
exactly 0.0 after normalisation) and whether the input is mirrored (the test images
are dark on the left, bright on the right), places the known people there with the
pixel-centre convention of docs/DEVELOPING.md, independently of the predictor's
code, and returns the encoder's ground-truth maps for them.

People are given relative to the image, ``(x + 0.5) / width`` and ``(y + 0.5) /
height``, so one network serves images of any size.  It is also registered as the
model ``test-marker`` (two standing people) for command-line tests.
"""
from __future__ import annotations

import numpy as np
import torch

from ftpose.keypoints import NETWORK, upright_person
from ftpose.models import register_model
from ftpose.targets import encode

DARK, BRIGHT = 50, 200


TWO_PEOPLE = np.stack([upright_person(0.3, 0.1, 0.8), upright_person(0.7, 0.2, 0.6)])
"""Relative keypoints of the people ``test-marker`` draws."""


def to_relative(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.array(keypoints, np.float64)
    out[..., 0] = (out[..., 0] + 0.5) / width
    out[..., 1] = (out[..., 1] + 0.5) / height
    return out


def to_pixels(relative: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.array(relative, np.float64)
    out[..., 0] = out[..., 0] * width - 0.5
    out[..., 1] = out[..., 1] * height - 0.5
    return out


def two_halves_image(height: int, width: int) -> np.ndarray:
    image = np.full((height, width, 3), BRIGHT, np.uint8)
    image[:, : width // 2] = DARK
    return image


@register_model("test-marker")
class MarkerNetwork(torch.nn.Module):
    """Returns the ground-truth maps of people given relative to the image.

    ``detect_mirroring`` reads a mirrored input from the dark-left/bright-right test
    images; leave it off for real photos (which are never run mirrored without --flip).
    """

    stride = 8

    def __init__(self, relative_keypoints=TWO_PEOPLE, detect_mirroring: bool = False):
        super().__init__()
        self.relative = np.asarray(relative_keypoints, np.float64).reshape(-1, len(NETWORK), 3)
        self.detect_mirroring = detect_mirroring
        self.inputs = []   # the shapes of the batches it was given

    def forward(self, x):
        self.inputs.append(tuple(x.shape))
        heatmaps, pafs = [], []
        for image in x.numpy():
            content = np.abs(image).sum(0) > 0
            rows, cols = np.flatnonzero(content.any(1)), np.flatnonzero(content.any(0))
            shown_h, shown_w, x0 = rows[-1] + 1, cols[-1] - cols[0] + 1, cols[0]
            shown = image[:, :shown_h, x0:x0 + shown_w]
            keypoints = to_pixels(self.relative, shown_h, shown_w)
            if self.detect_mirroring and shown[:, :, : shown_w // 2].mean() > shown[:, :, shown_w // 2:].mean():
                keypoints = NETWORK.flip(keypoints, image.shape[2])
            h, p = encode(keypoints, image.shape[1], image.shape[2], stride=8)
            heatmaps.append(h)
            pafs.append(p)
        return [(torch.from_numpy(np.stack(heatmaps)), torch.from_numpy(np.stack(pafs)))]
