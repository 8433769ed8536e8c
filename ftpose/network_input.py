"""The network-input contract: what every ftpose network takes, and how images become it.

Every network ftpose builds or loads (``ftnet``, ``ftnet-light``, ``openpose``, the
OpenPose-layout network files of :mod:`ftpose.models.foreign`) takes a ``(B, 3, H, W)``
float32 batch of **BGR** pixels ``p`` as ``p / 256 - 0.5``, with H and W multiples of
its stride, and returns maps at that stride.  A network states its stride as
``network.stride``; :func:`network_stride` reads it.  Images are padded right and
bottom with :data:`PAD_VALUE` grey, which is 0.0 after normalising, so the padding
looks like the zero padding of the network's convolutions.

The predictor, training, export, quantization, the benchmarks and the dataset crops
all prepare inputs through this module, so the contract is written down once.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

STRIDE = 8
"""The stride of every network ftpose has; code that holds a network reads :func:`network_stride` instead."""

PIXEL_SCALE = 256.0
PIXEL_OFFSET = 0.5
"""A pixel value ``p`` enters the network as ``p / PIXEL_SCALE - PIXEL_OFFSET``."""

PAD_VALUE = 128
"""Grey that pads images to multiples of the stride and fills crops: 0.0 once normalised."""

MAX_INPUT_ASPECT = 4
"""The network input is at most this many times as wide as it is high (1472 x 368 at
scale 1).  A wider image, a panorama or a 1 x 5000 strip, is letterboxed: scaled down
until its width fits and padded below, instead of being scaled to its height (which
made a 1 x 5000 PNG a 368 x 1.8 million input needing 22 GB).  Height is fixed by the
scale, so network memory is bounded whatever the image."""


def normalize(pixels):
    """uint8 BGR pixels (numpy array or torch tensor, any shape) -> float32 ``p / 256 - 0.5``, a new array."""
    if isinstance(pixels, np.ndarray):
        values = pixels.astype(np.float32)
    else:
        values = pixels.float()
        if values is pixels:   # already float32: do not change the caller's tensor
            values = values.clone()
    values /= PIXEL_SCALE
    values -= PIXEL_OFFSET
    return values


def denormalize(values):
    """The inverse of :func:`normalize`: network input -> pixel values (float)."""
    return (values + PIXEL_OFFSET) * PIXEL_SCALE


def network_batch(images: Sequence[np.ndarray]) -> np.ndarray:
    """BGR uint8 images of one size ``(H, W, 3)`` -> the network's ``(B, 3, H, W)`` float32 input."""
    return normalize(np.stack(images).transpose(0, 3, 1, 2))


def network_stride(network) -> int:
    """The stride of ``network``'s maps (``network.stride``; :data:`STRIDE` for a module that does not say)."""
    return int(getattr(network, "stride", STRIDE))


def check_network_input(x, stride: int = STRIDE) -> None:
    """Raise ``ValueError`` unless ``x`` is a ``(B, 3, H, W)`` batch with H, W multiples of ``stride``."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an input of shape (B, 3, H, W), got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height % stride or width % stride:
        raise ValueError(f"input height and width must be multiples of {stride}, got {height}x{width} "
                         f"(pad the image with value {PAD_VALUE} before normalising)")


@dataclass
class NetworkInput:
    """An image resized and padded for the network, still uint8 BGR (:func:`network_batch` normalises)."""

    pixels: np.ndarray          # (H, W, 3) uint8, padded to multiples of the stride
    shown: tuple[int, int]      # (rows, cols) of it that show the image; the rest is padding


def prepare_network_input(image: np.ndarray, height: int, stride: int = STRIDE) -> NetworkInput:
    """Resize ``image`` to ``height`` rows (aspect kept) and pad it to multiples of ``stride``.

    An image wider than :data:`MAX_INPUT_ASPECT` is scaled to that width instead, and
    fewer rows, with the rest padding.
    """
    rows, cols = shown_size(image.shape[0], image.shape[1], height)
    interpolation = cv2.INTER_AREA if rows < image.shape[0] else cv2.INTER_LINEAR
    resized = cv2.resize(image, (cols, rows), interpolation=interpolation)
    padded_rows = -(-rows // stride) * stride
    padded_cols = -(-cols // stride) * stride
    pixels = cv2.copyMakeBorder(resized, 0, padded_rows - rows, 0, padded_cols - cols,
                                cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return NetworkInput(pixels, (rows, cols))


def shown_size(height: int, width: int, input_height: int) -> tuple[int, int]:
    """``(rows, cols)`` of an image resized to ``input_height`` rows, aspect kept.

    The width is capped at ``MAX_INPUT_ASPECT * input_height`` (the rows then shrink in
    proportion), so no image makes an input larger than that.
    """
    rows = max(1, int(input_height))
    max_cols = MAX_INPUT_ASPECT * rows
    if width * rows > max_cols * height:   # letterboxed: the width fits, the rows follow
        return max(1, round(height * max_cols / width)), max_cols
    return rows, max(1, round(width * rows / height))
