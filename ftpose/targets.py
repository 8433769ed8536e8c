"""Ground-truth maps for training: joint heatmaps, part affinity fields, ignore masks.

All maps are drawn at the cell centres of a stride-``s`` grid (cell ``j`` centred at
image ``x = (j + 0.5) * s - 0.5``, see docs/DEVELOPING.md), for any image size: a
``H x W`` image gives ``ceil(H / s) x ceil(W / s)`` maps.

- Heatmaps (paper eq. 1): ``exp(-d^2 / (2 sigma^2))`` around every labelled joint,
  **the maximum** over people (the paper's choice).  OpenPose's C++ sums overlapping
  people and clips at 1, which melts two close joints into one plateau; the maximum
  keeps a separate peak for each.  ``sigma`` is the standard deviation in image
  pixels, as in OpenPose's code (7 px); the paper's ``sigma^2`` denominator differs
  from it only by a constant factor.  Channel 18 is the background,
  ``max(1 - max over parts, 0)``.
- PAFs (eq. 2): the unit vector from the limb's first joint to its second on every
  cell within ``paf_width`` image pixels (one stride-8 cell) of the segment between
  them, i.e. a capsule around the limb; where several people's limbs of one type
  cover a cell their vectors are averaged.
- Ignore mask ``W(p)``: the pixels the loss must not see, at full image resolution
  so that training can warp it with the image; :func:`downsample_mask` brings it to
  the map grid.
"""
from __future__ import annotations

import warnings

import numpy as np
from pycocotools import mask as mask_utils

from ftpose.keypoints import LIMBS, NUM_HEATMAPS, NUM_LIMBS, NUM_PAFS, NUM_PARTS
from ftpose.network_input import STRIDE

_LIMB_ENDS = np.array(LIMBS)  # (19, 2) joint indices of each limb


def map_size(height: int, width: int, stride: int = STRIDE) -> tuple[int, int]:
    """The ``(h, w)`` of the maps for a ``height x width`` image (rounded up)."""
    return -(-int(height) // stride), -(-int(width) // stride)


def cell_centres(size: int, stride: int) -> np.ndarray:
    """Image coordinates of the centres of ``size`` cells of a stride-``stride`` grid."""
    return (np.arange(size, dtype=np.float32) + 0.5) * stride - 0.5


def encode(keypoints: np.ndarray, height: int, width: int, stride: int = STRIDE,
           sigma: float = 7.0, paf_width: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps ``(19, h, w)`` and PAFs ``(38, h, w)`` (float32) for one image.

    ``keypoints`` is ``(N, 18, 3)`` in the network layout (image pixels, COCO
    visibility); joints with ``v > 0`` are drawn, and limbs whose two ends both have
    ``v > 0`` (and are not at the same point).  ``N = 0`` gives empty part maps and
    an all-one background.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32).reshape(-1, NUM_PARTS, 3)
    h, w = map_size(height, width, stride)
    return _heatmaps(keypoints, stride, h, w, sigma), _pafs(keypoints, stride, h, w, paf_width)


def _heatmaps(keypoints: np.ndarray, stride: int, h: int, w: int, sigma: float) -> np.ndarray:
    xs, ys = cell_centres(w, stride), cell_centres(h, stride)
    heatmaps = np.zeros((NUM_HEATMAPS, h, w), np.float32)
    labelled = keypoints[:, :, 2] > 0
    if labelled.any():
        # A 2-D Gaussian is the outer product of two 1-D ones: (N, 18, h) x (N, 18, w).
        scale = np.float32(-0.5 / sigma ** 2)
        gx = np.exp(scale * (xs - keypoints[:, :, 0:1]) ** 2)
        gy = np.exp(scale * (ys - keypoints[:, :, 1:2]) ** 2)
        gy *= labelled[:, :, None]
        np.max(gy[:, :, :, None] * gx[:, :, None, :], axis=0, out=heatmaps[:NUM_PARTS])
    np.subtract(1.0, heatmaps[:NUM_PARTS].max(axis=0), out=heatmaps[NUM_PARTS])
    return heatmaps


def _pafs(keypoints: np.ndarray, stride: int, h: int, w: int, paf_width: float) -> np.ndarray:
    xs, ys = cell_centres(w, stride), cell_centres(h, stride)
    start = keypoints[:, _LIMB_ENDS[:, 0]]          # (N, 19, 3)
    end = keypoints[:, _LIMB_ENDS[:, 1]]
    delta = end[..., :2] - start[..., :2]
    length = np.hypot(delta[..., 0], delta[..., 1])
    person, limb = np.nonzero((start[..., 2] > 0) & (end[..., 2] > 0) & (length > 1e-3))
    pafs = np.zeros((NUM_PAFS, h, w), np.float32)
    if len(limb) == 0:
        return pafs
    a, b = start[person, limb, :2], end[person, limb, :2]               # (M, 2)
    length = length[person, limb]
    unit = (b - a) / length[:, None]
    # Only the cells in each limb's box (grown by the width) can be on it: enumerate
    # those boxes as one flat, ragged list of (limb instance, cell) pairs.
    lo = np.ceil((np.minimum(a, b) - paf_width + 0.5) / stride - 0.5).astype(np.int64)
    hi = np.floor((np.maximum(a, b) + paf_width + 0.5) / stride - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [w - 1, h - 1])
    box_w, box_h = np.maximum(hi - lo + 1, 0).T
    sizes = box_w * box_h
    instance = np.repeat(np.arange(len(limb)), sizes)
    offset = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    cx = lo[instance, 0] + offset % box_w[instance]
    cy = lo[instance, 1] + offset // box_w[instance]
    dx = xs[cx] - a[instance, 0]
    dy = ys[cy] - a[instance, 1]
    ux, uy = unit[instance, 0], unit[instance, 1]
    along = dx * ux + dy * uy
    across = dx * uy - dy * ux
    beyond = along - np.clip(along, 0.0, length[instance])              # past either end
    on = across ** 2 + beyond ** 2 <= paf_width ** 2
    instance, ux, uy = instance[on], ux[on], uy[on]
    cell = cy[on] * w + cx[on]
    # Average per limb type and cell: sum the vectors and the counts with bincount.
    index = limb[instance] * (h * w) + cell
    size = NUM_LIMBS * h * w
    count = np.maximum(np.bincount(index, minlength=size), 1)
    pafs[0::2] = (np.bincount(index, ux, minlength=size) / count).reshape(NUM_LIMBS, h, w)
    pafs[1::2] = (np.bincount(index, uy, minlength=size) / count).reshape(NUM_LIMBS, h, w)
    return pafs


def ignore_mask(annotations: list[dict], height: int, width: int) -> np.ndarray:
    """``(height, width)`` bool mask, True where the loss must ignore the image.

    Ignored: crowd regions (``iscrowd``) and people annotated without keypoints
    (``num_keypoints == 0``, counted from ``keypoints`` when absent), whom the maps do
    not draw and the loss must not penalise the network for finding.  Regions come
    from the segmentation (polygons, uncompressed or compressed RLE), or from the box
    when there is none.
    """
    mask = np.zeros((height, width), bool)
    for ann in annotations:
        labelled = ann.get("num_keypoints", np.count_nonzero(np.asarray(ann.get("keypoints", []))[2::3]))
        if not (ann.get("iscrowd", 0) or labelled == 0):
            continue
        segmentation = ann.get("segmentation")
        if segmentation:
            if isinstance(segmentation, list):        # polygons
                rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
            elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
                rle = mask_utils.frPyObjects(segmentation, height, width)
            else:                                     # compressed RLE
                rle = segmentation
            with warnings.catch_warnings():  # pycocotools' own numpy-2 copy= deprecation
                warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
                mask |= mask_utils.decode(rle).astype(bool)
        elif ann.get("bbox"):
            x, y, bw, bh = ann["bbox"]
            mask[max(int(np.floor(y)), 0):max(int(np.ceil(y + bh)), 0),
                 max(int(np.floor(x)), 0):max(int(np.ceil(x + bw)), 0)] = True
    return mask


def downsample_mask(mask: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """The fraction of each stride-``stride`` cell that ``mask`` covers, ``(h, w)`` float32.

    Cells past the image edge count the missing pixels as uncovered.  The loss weight
    of a cell is ``1 - downsample_mask(ignore, stride)``.
    """
    height, width = mask.shape
    h, w = map_size(height, width, stride)
    padded = np.zeros((h * stride, w * stride), np.float32)
    padded[:height, :width] = mask
    return padded.reshape(h, stride, w, stride).mean(axis=(1, 3))
