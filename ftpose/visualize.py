"""Drawing people on images: one colour per person, skeletons from ftpose.keypoints."""
from __future__ import annotations

import colorsys

import cv2
import numpy as np

from ftpose.keypoints import NETWORK, KeypointSet

_GOLDEN_RATIO = 0.618033988749895


def person_colour(index: int) -> tuple[int, int, int]:
    """A bright BGR colour for person ``index``; neighbouring indices get distant hues."""
    hue = (0.1 + index * _GOLDEN_RATIO) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_people(image: np.ndarray, people, layout: KeypointSet = NETWORK,
                min_confidence: float = 0.0) -> np.ndarray:
    """Return a copy of BGR ``image`` with every person's skeleton drawn.

    ``people`` is a ``People`` result or a ``(P, K, 3)`` array of ``(x, y, confidence)``
    in image coordinates and in ``layout``; joints at or below ``min_confidence`` and
    limbs touching them are left out.  Tracked people (``people.track_ids``) take their
    colour from their track id, which is written above them, so a person keeps one
    colour through a video.  Line widths follow the image size so overlays read the
    same on thumbnails and on 4K frames.
    """
    keypoints = np.asarray(getattr(people, "keypoints", people), dtype=np.float64).reshape(-1, len(layout), 3)
    track_ids = getattr(people, "track_ids", None)
    canvas = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 320))
    radius = thickness + 1
    # sub-pixel drawing: cv2 takes fixed-point coordinates with `shift` fractional bits
    shift = 4
    scale = 1 << shift
    for index, person in enumerate(keypoints):
        colour = person_colour(index if track_ids is None else int(track_ids[index]))
        present = (person[:, 2] > min_confidence) & np.isfinite(person[:, :2]).all(axis=1)
        points = np.round(person[:, :2] * scale).astype(np.int64)
        for a, b in layout.skeleton:
            if present[a] and present[b]:
                cv2.line(canvas, tuple(map(int, points[a])), tuple(map(int, points[b])), colour,
                         thickness, cv2.LINE_AA, shift)
        for k in np.flatnonzero(present):
            cv2.circle(canvas, tuple(map(int, points[k])), radius * scale, colour, -1, cv2.LINE_AA, shift)
            cv2.circle(canvas, tuple(map(int, points[k])), radius * scale, (0, 0, 0), 1, cv2.LINE_AA, shift)
        if track_ids is not None and present.any():
            _draw_label(canvas, str(int(track_ids[index])), person[present, :2], colour, thickness)
    return canvas


def _draw_label(canvas: np.ndarray, text: str, points: np.ndarray, colour, thickness: int) -> None:
    """``text`` on a ``colour`` tag just above the highest of ``points``."""
    font_scale = max(0.4, thickness * 0.45)
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    x = int(np.clip(points[:, 0].mean() - width / 2, 0, max(0, canvas.shape[1] - width - 4)))
    y = int(np.clip(points[:, 1].min() - 3 * thickness, height + baseline + 4, canvas.shape[0]))
    cv2.rectangle(canvas, (x, y - height - baseline - 4), (x + width + 4, y), colour, -1)
    cv2.putText(canvas, text, (x + 2, y - baseline - 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0),
                thickness, cv2.LINE_AA)


def draw_banner(image: np.ndarray, text: str, colour=(0, 0, 200)) -> np.ndarray:
    """Write ``text`` in white on a coloured strip across the top of ``image`` (in place)."""
    height = image.shape[0]
    font_scale = max(0.4, image.shape[1] / 1400)
    (_, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    strip = min(height, text_height + baseline + 8)
    image[:strip] = colour
    cv2.putText(image, text, (6, strip - baseline - 4), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return image
