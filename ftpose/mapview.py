"""Pictures of the network's maps over the photo: the views of the paper's Fig. 1 and Fig. 4.

The paper argues visually: the backbone alone cannot tell a left ankle from a right one
(Fig. 1: the left-ankle heatmap lights up on both ankles), and after feature transfer and
refinement it can (Fig. 4).  These functions draw the maps a :class:`~ftpose.predictor.Predictor`
computes so that comparison can be made on any photo:

* :func:`part_heatmap`: one part's heatmap as a colour map over the dimmed photo;
* :func:`merged_heatmaps`: all 18 parts at once, each cell in the colour of its strongest
  part, brightness = its value.  Left parts are warm (red to yellow), right parts cool
  (cyan to blue), the nose magenta and the neck green, so a left/right confusion shows
  as a wrong colour family at a glance;
* :func:`paf_image`: the part affinity fields, hue = direction of the strongest limb's
  vector at each cell (colour wheel in the corner), brightness = its length;
* :func:`parts_grid`: every part's heatmap, one tile each;
* :func:`comparison`: rows of maps (e.g. before and after refinement, with and without
  transfer) against columns people / merged heatmaps / chosen parts / PAFs;
* :func:`map_panels`: the merged heatmaps, parts grid and PAFs of one set of maps;
* :func:`render`: all of the above for every supervised stage of a predictor, as named
  arrays (what ``ftpose maps`` writes as PNG files).

All functions take and return uint8 BGR images; the photo is shrunk to at most
``max_side`` pixels first, so sheets of many panels stay small.  Maps are placed on the
photo with the grid convention of docs/DEVELOPING.md (cell ``i`` centred at image
``x = (i + 0.5) * cx - 0.5``).
"""
from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np

from ftpose.keypoints import NETWORK, NUM_LIMBS, NUM_PARTS
from ftpose.visualize import draw_banner

DEFAULT_PARTS = ("left_ankle", "right_ankle")
"""The parts :func:`comparison` shows by default: the paper's Fig. 1 example."""

PANEL_SIDE = 640
TILE_SIDE = 320
_BACKDROP_BRIGHTNESS = 0.45
_CAPTION_ROWS = 22
_CAPTION_COLOUR = (48, 48, 48)
_BODY_ORDER = ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")


def _part_colour(name: str) -> tuple[float, float, float]:
    """BGR in 0..1: left parts warm, right parts cool, the two centre parts apart from both."""
    side, _, joint = name.partition("_")
    if not joint:
        hue = {"nose": 0.83, "neck": 0.33}[name]
    else:
        step = _BODY_ORDER.index(joint) / (len(_BODY_ORDER) - 1)
        hue = 0.16 * step if side == "left" else 0.47 + 0.2 * step
    r, g, b = colorsys.hsv_to_rgb(hue, 0.9, 1.0)
    return b, g, r


PART_COLOURS = np.array([_part_colour(n) for n in NETWORK.keypoints], np.float32)
"""``(18, 3)`` BGR colours (0..1) of the network's parts in :func:`merged_heatmaps`."""


def part_index(part) -> int:
    """The network channel of ``part``, a name of ``ftpose.keypoints.OPENPOSE18`` or an index."""
    if isinstance(part, (int, np.integer)) and 0 <= part < NUM_PARTS:
        return int(part)
    if part in NETWORK.index:
        return NETWORK.index[part]
    raise ValueError(f"unknown part {part!r}; parts are: {', '.join(NETWORK.keypoints)}")


def fit(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk (never enlarged) so its longer side is at most ``max_side``, and the ratio."""
    ratio = min(1.0, max_side / max(image.shape[:2]))
    if ratio == 1.0:
        return image, 1.0
    size = (max(1, round(image.shape[1] * ratio)), max(1, round(image.shape[0] * ratio)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), ratio


def upsample(maps: np.ndarray, cell_size: tuple[float, float], shape: tuple[int, int]) -> np.ndarray:
    """``(C, h, w)`` grid maps with ``cell_size`` image pixels per cell -> ``(H, W, C)`` on an image of ``shape``.

    ``cv2.resize`` keeps cell centres on ``(i + 0.5) * cx - 0.5`` (the grid's convention)
    when it enlarges ``w`` cells to ``w * cx`` pixels; the grid may overhang the image by
    less than a cell, which is cropped.
    """
    channels, h, w = maps.shape
    height, width = shape
    size = (max(width, round(w * cell_size[0])), max(height, round(h * cell_size[1])))
    up = cv2.resize(np.ascontiguousarray(np.moveaxis(maps, 0, -1), np.float32), size, interpolation=cv2.INTER_LINEAR)
    return up.reshape(size[1], size[0], channels)[:height, :width]


def _backdrop(image: np.ndarray) -> np.ndarray:
    """The photo in dimmed grey, float 0..255, so coloured maps stand out on it."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) * _BACKDROP_BRIGHTNESS
    return np.repeat(grey[..., None], 3, axis=2)


def _blend(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``colour`` (float BGR 0..255) over the dimmed ``image`` with per-pixel ``alpha`` (0..1).

    The heatmap views pass the square root of the value as ``alpha``, so that the weak
    responses, the telling ones in a left/right confusion, stay visible.
    """
    alpha = np.clip(alpha, 0.0, 1.0)[..., None]
    return np.clip(_backdrop(image) * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)


def _shrunk(image, maps, max_side):
    display, ratio = fit(image, max_side)
    cell = (maps.cell_size[0] * display.shape[1] / image.shape[1], maps.cell_size[1] * display.shape[0] / image.shape[0])
    return display, cell, ratio


def part_heatmap(image: np.ndarray, maps, part, max_side: int = PANEL_SIDE) -> np.ndarray:
    """One part's heatmap (``maps``: a ``PoseMaps`` of ``image``) in the inferno colour map over the photo."""
    display, cell, _ = _shrunk(image, maps, max_side)
    value = np.clip(upsample(maps.heatmaps[[part_index(part)]], cell, display.shape[:2])[..., 0], 0, 1)
    colour = cv2.applyColorMap((value * 255).astype(np.uint8), cv2.COLORMAP_INFERNO).astype(np.float32)
    return _blend(display, colour, np.sqrt(value))


def merged_heatmaps(image: np.ndarray, maps, max_side: int = PANEL_SIDE) -> np.ndarray:
    """All parts' heatmaps: each pixel in its strongest part's colour (:data:`PART_COLOURS`), as bright as its value."""
    display, cell, _ = _shrunk(image, maps, max_side)
    values = np.clip(upsample(maps.heatmaps[:NUM_PARTS], cell, display.shape[:2]), 0, 1)
    strongest = values.argmax(-1)
    value = np.take_along_axis(values, strongest[..., None], -1)[..., 0]
    return _blend(display, PART_COLOURS[strongest] * 255, np.sqrt(value))


def paf_image(image: np.ndarray, maps, max_side: int = PANEL_SIDE) -> np.ndarray:
    """The PAFs: at each pixel the longest limb vector, hue = its direction, brightness = its length (up to 1)."""
    display, cell, _ = _shrunk(image, maps, max_side)
    vectors = upsample(maps.pafs, cell, display.shape[:2]).reshape(*display.shape[:2], NUM_LIMBS, 2)
    lengths = np.hypot(vectors[..., 0], vectors[..., 1])
    longest = lengths.argmax(-1)[..., None]
    x = np.take_along_axis(vectors[..., 0], longest, -1)[..., 0]
    y = np.take_along_axis(vectors[..., 1], longest, -1)[..., 0]
    canvas = _blend(display, _direction_colours(x, y), np.hypot(x, y))
    _draw_wheel(canvas)
    return canvas


def _direction_colours(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Float BGR 0..255 with hue = the direction of ``(x, y)`` (image axes: y down); 0 deg = right = red."""
    hue = (np.degrees(np.arctan2(y, x)) % 360).astype(np.float32)
    ones = np.ones_like(hue)
    return cv2.cvtColor(np.stack([hue, ones, ones], -1), cv2.COLOR_HSV2BGR) * 255


def _draw_wheel(canvas: np.ndarray) -> None:
    """The PAF colour key (direction -> hue) in the bottom-right corner of ``canvas``, in place."""
    radius = max(8, min(canvas.shape[:2]) // 14)
    if 2 * radius + 8 > min(canvas.shape[:2]):
        return
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    x, y = np.meshgrid(offsets, offsets)
    inside = np.hypot(x, y) <= radius
    colours = _direction_colours(x, y).astype(np.uint8)
    top, left = canvas.shape[0] - 2 * radius - 5, canvas.shape[1] - 2 * radius - 5
    patch = canvas[top:top + 2 * radius + 1, left:left + 2 * radius + 1]
    patch[inside] = colours[inside]


def caption(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with a strip above it carrying ``text``."""
    strip = np.zeros((_CAPTION_ROWS, tile.shape[1], 3), np.uint8)
    return np.vstack([draw_banner(strip, text, _CAPTION_COLOUR), tile])


def _grid(tiles: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Tiles of one size in rows of ``columns`` (the last row padded black)."""
    blank = np.zeros_like(tiles[0])
    rows = [list(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    rows[-1] += [blank] * (columns - len(rows[-1]))
    return np.vstack([np.hstack(row) for row in rows])


def parts_grid(image: np.ndarray, maps, columns: int = 6, max_side: int = TILE_SIDE) -> np.ndarray:
    """Every part's heatmap (:func:`part_heatmap`), captioned with its name, ``columns`` to a row."""
    tiles = [caption(part_heatmap(image, maps, k, max_side), name) for k, name in enumerate(NETWORK.keypoints)]
    return _grid(tiles, columns)


def people_image(image: np.ndarray, people, max_side: int = PANEL_SIDE) -> np.ndarray:
    """The skeletons of ``people`` (image pixels) on the photo, shrunk like the map panels."""
    display, ratio = fit(image, max_side)
    return people.scaled(ratio).draw(display)


def comparison(image: np.ndarray, rows: Sequence[tuple[str, object, object]], parts: Sequence = DEFAULT_PARTS,
               max_side: int = TILE_SIDE) -> np.ndarray:
    """A sheet of ``rows`` of ``(label, maps, people)`` against columns people / heatmaps / ``parts`` / PAFs.

    With rows for the stages before and after refinement it is the paper's Fig. 4; with
    rows for networks with and without transfer and ``parts`` the two ankles, its Fig. 1.
    """
    names = [NETWORK.keypoints[part_index(p)] for p in parts]
    tiles = []
    for label, maps, people in rows:
        tiles.append(caption(people_image(image, people, max_side), f"{label}: {len(people)} people"))
        tiles.append(caption(merged_heatmaps(image, maps, max_side), f"{label}: all parts"))
        tiles += [caption(part_heatmap(image, maps, name, max_side), f"{label}: {name}") for name in names]
        tiles.append(caption(paf_image(image, maps, max_side), f"{label}: PAFs"))
    return _grid(tiles, 3 + len(names))


def stage_names(count: int) -> list[str]:
    """Names of a network's supervised stages, final last (``ftnet``: before refinement, final)."""
    if count == 1:
        return ["final"]
    if count == 2:
        return ["before-refinement", "final"]
    return [f"stage{i}" for i in range(1, count)] + ["final"]


def render(predictor, image: np.ndarray, compare: Sequence[tuple[str, object]] = (),
           parts: Sequence = DEFAULT_PARTS, tile_side: int = TILE_SIDE) -> dict[str, np.ndarray]:
    """Every panel of ``image`` for every supervised stage of ``predictor``, by name.

    Names: ``STAGE.heatmaps``, ``STAGE.parts`` and ``STAGE.pafs`` (:func:`map_panels`)
    for each stage of :func:`stage_names`, and ``compare``, the :func:`comparison` sheet of all stages,
    followed by those of each ``(label, other_predictor)`` in ``compare`` (e.g. the
    same weights without transfer, ``Predictor(ftpose.models.without_transfer(net))``),
    its tiles at most ``tile_side`` pixels on their longer side.
    """
    panels: dict[str, np.ndarray] = {}
    rows = []
    for label, each in [("", predictor), *compare]:
        stages = each.stage_maps(image)
        for name, maps in zip(stage_names(len(stages)), stages):
            rows.append((f"{label} {name}".strip(), maps, each.decode(maps)))
            if not label:
                panels.update({f"{name}.{kind}": panel for kind, panel in map_panels(image, maps).items()})
    panels["compare"] = comparison(image, rows, parts, tile_side)
    return panels


def map_panels(image: np.ndarray, maps) -> dict[str, np.ndarray]:
    """The three panels of one set of maps: ``heatmaps`` (merged), ``parts`` (grid), ``pafs``."""
    return {"heatmaps": merged_heatmaps(image, maps), "parts": parts_grid(image, maps), "pafs": paf_image(image, maps)}
