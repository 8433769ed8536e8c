"""Drawing training samples with their targets, to check by eye that everything lines up."""
from __future__ import annotations

import cv2
import numpy as np

from ftpose.data.dataset import Sample
from ftpose.keypoints import LIMBS, NETWORK, NUM_PARTS

# joint colours: left blue, right red, centre green (BGR)
_COLOURS = [(255, 0, 0) if n.startswith("left_") else (0, 0, 255) if n.startswith("right_") else (0, 255, 0)
            for n in NETWORK.keypoints]


def _upsample(maps: np.ndarray, size: int) -> np.ndarray:
    # cv2.resize keeps the pixel-centre convention of docs/DEVELOPING.md, so cells stay aligned
    return cv2.resize(maps, (size, size), interpolation=cv2.INTER_LINEAR)


def draw_sample(sample: Sample) -> np.ndarray:
    """Three panels side by side: the crop with its keypoints (left blue, right red) and
    limbs, ignored cells darkened; the part heatmaps over it; the PAFs over it (hue =
    limb direction, brightness = magnitude)."""
    image = sample.image
    size = image.shape[0]
    weight = _upsample(sample.weight, size)[..., None]
    crop = (image * (0.35 + 0.65 * weight)).astype(np.uint8)
    for person in sample.keypoints:
        for a, b in LIMBS:
            if person[a, 2] > 0 and person[b, 2] > 0:
                cv2.line(crop, tuple(np.round(person[a, :2]).astype(int)), tuple(np.round(person[b, :2]).astype(int)),
                         (0, 255, 255), 1, cv2.LINE_AA)
        for j in range(NUM_PARTS):
            if person[j, 2] > 0:
                cv2.circle(crop, tuple(np.round(person[j, :2]).astype(int)), 3, _COLOURS[j], -1, cv2.LINE_AA)

    heat = _upsample(sample.heatmaps[:NUM_PARTS].max(0), size)
    heat_colour = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat_panel = cv2.addWeighted(image, 0.5, heat_colour, 0.5, 0)

    x, y = sample.pafs[0::2], sample.pafs[1::2]
    strongest = np.hypot(x, y).argmax(0)
    fx = np.take_along_axis(x, strongest[None], 0)[0]
    fy = np.take_along_axis(y, strongest[None], 0)[0]
    fx, fy = _upsample(fx, size), _upsample(fy, size)
    magnitude = np.clip(np.hypot(fx, fy), 0, 1)
    hsv = np.stack([(np.degrees(np.arctan2(fy, fx)) % 360) / 2, np.full_like(fx, 255), magnitude * 255], -1)
    paf_colour = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    paf_panel = cv2.addWeighted(image, 0.5, paf_colour, 1.0, 0)
    return np.hstack([crop, heat_panel, paf_panel])

