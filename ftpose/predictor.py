"""From a photo to people: preprocessing, multi-scale and flip inference, decoding.

The pipeline for one image ``H x W``:

1. For each scale ``s``, resize the image to height ``round(s * input_height)`` with
   its aspect ratio kept and pad it right and bottom to multiples of 8 with grey
   (128, i.e. 0.0 after ``pixels / 256 - 0.5``).  With ``flip`` the padded image is
   also mirrored as a whole, so that flipping its maps back (``flip_maps``) lands them
   on exactly the same grid as the unflipped ones.
2. Run the network on each input (images of the same padded size are batched).
3. Resample every map onto one shared *decode grid* with cells of ``decode_stride``
   network-input pixels at scale 1.0 and average over scales and flips.  The
   resampling is one separable matrix product per scale (cubic interpolation), which
   also crops the padding.  The default grid is the network's own at scale 1.0 (cell
   8, or ``8 / max(scales)`` when a scale enlarges, so no scale loses resolution): there
   the single-scale maps are used as they are, and the decoder's sub-cell peak
   refinement makes upsampling unnecessary.  On a trained OpenPose-style network,
   upsampling to strides 4, 2 or 1 did not raise COCO AP beyond noise while making
   this step up to 60x slower (``benchmarks/predictor_settings.py``); the 57-channel
   maps are never built at full image size.
4. Decode the averaged maps into people (:func:`ftpose.grouping.decode`) and map the
   keypoints from grid cells back to image pixels.

Coordinates follow docs/DEVELOPING.md: pixel centres at integers; a grid whose cells
are ``c`` image pixels wide has cell ``i`` centred at image ``x = (i + 0.5) * c - 0.5``.
"""
from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ftpose.devices import parse_device
from ftpose.export import create_backend
from ftpose.keypoints import NUM_HEATMAPS, flip_maps
from ftpose.models.resolve import resolve_model, untrained_message
from ftpose.network_input import NetworkInput, network_stride, normalize, prepare_network_input, shown_size

INPUT_HEIGHT = 368
"""Network input height at scale 1.0 (the paper's test-time height)."""

MULTI_SCALES = (0.75, 1.0, 1.25, 1.5)
"""The default multi-scale set: the paper's 4 scales 0.25 apart, relative to
:data:`INPUT_HEIGHT`.  The paper does not list its scales; this set keeps scale 1.0 and
leans towards enlarging, as OpenPose's (0.5, 1, 1.5, 2) does, because COCO's people are
mostly smaller than the ~220 px (0.6 of the crop) the network is trained on.  Of the
three 4-scale sets tried with a trained network (``benchmarks/predictor_settings.py``)
it scored best, by less than the noise of the 40 test photos."""

class UntrainedNetworkWarning(UserWarning):
    """The network has random weights: its maps, and so its people, are meaningless."""


@dataclass
class PoseMaps:
    """Heatmaps ``(19, h, w)`` and PAFs ``(38, h, w)`` on a grid covering one image.

    ``cell_size`` is ``(cx, cy)``, the image pixels per grid cell along x and y; grid
    cell ``(i, j)`` is centred at image ``((i + 0.5) * cx - 0.5, (j + 0.5) * cy - 0.5)``.
    """

    heatmaps: np.ndarray
    pafs: np.ndarray
    cell_size: tuple[float, float]


class Predictor:
    """Multi-person pose estimation on BGR images with a trained network.

    ``model`` is a model source (:mod:`ftpose.models.resolve`): a registered model name
    (see ``ftpose.list_models()``; default :func:`ftpose.models.default_model`, the most
    accurate model whose weights ship), a weights file or checkpoint, a network file
    (.xml, .onnx, .pb) or an ``nn.Module`` following the network contract of
    docs/DEVELOPING.md.  With a name and no ``weights``, the weights shipped as ``ftpose/assets/<name>.safetensors``
    are used; if there are none the network keeps its random initialisation,
    :attr:`trained` is False and an :class:`UntrainedNetworkWarning` is issued.

    ``scales`` are input heights relative to ``input_height`` (use
    :data:`MULTI_SCALES` for the paper's multi-scale test); ``flip`` adds the mirrored
    image; ``params`` (``ftpose.grouping.GroupingParams``) go to the decoder;
    ``decode_stride`` is the decode grid's cell size in network-input pixels at scale
    1.0 (default ``8 / max(scales, 1)``, the finest network grid; smaller values
    upsample); images of the same size are run ``batch_size`` at a time.

    ``backend`` runs the network (one of ``ftpose.export.BACKENDS``: eager ``torch`` in
    fp32 or bf16, ONNX Runtime, OpenVINO, TensorRT); :attr:`backend` may be replaced
    by any callable from a normalised batch to the final ``(heatmaps, pafs)``.
    ``calibration`` (BGR photos) calibrates the int8 backends (default: the bundled
    sample photo).
    """

    def __init__(self, model=None, weights=None, device="cpu", scales: Sequence[float] = (1.0,),
                 flip: bool = False, params=None, input_height: int = INPUT_HEIGHT,
                 decode_stride: float | None = None, batch_size: int = 8, backend: str = "torch",
                 calibration: Sequence[np.ndarray] | None = None):
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"scales must be positive numbers, got {tuple(scales)}")
        self.device = parse_device(device)
        self.network, self.trained = resolve_model(model, weights)
        self.stride = network_stride(self.network)
        if decode_stride is None:
            decode_stride = self.stride / max(1.0, max(scales))
        if not 0 < decode_stride <= self.stride:
            raise ValueError(f"decode_stride must be in (0, {self.stride}], got {decode_stride}")
        self.network.to(self.device).eval()
        self.backend = create_backend(backend, self.network, self.device, calibration=calibration)
        self.scales = tuple(float(s) for s in scales)
        self.flip = bool(flip)
        self.params = params
        self.input_height = int(input_height)
        self.decode_stride = float(decode_stride)
        self.batch_size = max(1, int(batch_size))
        if not self.trained:
            warnings.warn(untrained_message(self.network), UntrainedNetworkWarning, stacklevel=2)

    # -- public API -----------------------------------------------------------------

    def predict(self, image: np.ndarray):
        """People in a BGR uint8 image, keypoints in the image's pixel coordinates."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[np.ndarray]) -> list:
        """:meth:`predict` for several images, sharing network batches where sizes match."""
        return [self.decode(maps) for maps in self.maps_batch(images)]

    def maps(self, image: np.ndarray) -> PoseMaps:
        """The merged (scale- and flip-averaged) maps of one image on its decode grid."""
        return self.maps_batch([image])[0]

    def maps_batch(self, images: Sequence[np.ndarray]) -> list[PoseMaps]:
        return [stages[-1] for stages in self._merged_maps(images, lambda batch: [self.backend(batch)])]

    def stage_maps(self, image: np.ndarray) -> list[PoseMaps]:
        """The merged maps of every supervised stage of the network for one image, the final maps last.

        For ``ftnet`` and ``ftnet-light`` these are the maps before and after refinement,
        the comparison of the paper's Fig. 4.  They come from the eager PyTorch network in
        fp32 whatever :attr:`backend` is, since exported graphs keep only the final stage.
        """
        def every_stage(batch):
            with torch.inference_mode():
                return [(h.float(), p.float()) for h, p in self.network(batch)]

        return self._merged_maps([image], every_stage)[0]

    def _merged_maps(self, images: Sequence[np.ndarray], run_network) -> list[list[PoseMaps]]:
        """Per image, per stage that ``run_network`` (batch -> [(heatmaps, pafs), ...]) returns: merged maps."""
        images = [_check_image(im) for im in images]
        grids = [self._decode_grid(im.shape[0], im.shape[1]) for im in images]
        sums: list[list | None] = [None] * len(images)
        for scale in self.scales:
            inputs = [prepare_network_input(im, round(scale * self.input_height), self.stride) for im in images]
            for stages, index in self._run(inputs, run_network):
                grid, shown = grids[index], inputs[index].shown
                merged_stages = []
                for heatmaps, pafs in stages:
                    maps = torch.cat([heatmaps, pafs], 1)
                    # grid cell -> network-input pixel at scale 1.0 -> at this scale -> map cell
                    maps = _resample(maps, -2, grid.shape[0], self.decode_stride * shown[0] / grid.shown[0] / self.stride)
                    maps = _resample(maps, -1, grid.shape[1], self.decode_stride * shown[1] / grid.shown[1] / self.stride)
                    merged_stages.append(maps.sum(0))  # the image and its mirror, with flip
                sums[index] = merged_stages if sums[index] is None else [
                    total + merged for total, merged in zip(sums[index], merged_stages)]
        count = len(self.scales) * (2 if self.flip else 1)
        out = []
        for totals, grid in zip(sums, grids):
            merged = [(total / count).cpu().numpy() for total in totals]
            out.append([PoseMaps(m[:NUM_HEATMAPS], m[NUM_HEATMAPS:], grid.cell_size) for m in merged])
        return out

    def track(self, frames: Iterable[np.ndarray], tracker=None, min_score: float | None = None,
              min_joints: int | None = None) -> Iterator:
        """People with ``track_ids`` in each of ``frames`` (BGR images of one video, in
        order), ``batch_size`` frames per network batch.

        People below ``min_score`` or with fewer than ``min_joints`` joints are dropped
        first (defaults: ``ftpose.pipeline.DEFAULT_MIN_SCORE`` and ``DEFAULT_MIN_JOINTS``);
        ``tracker`` defaults to a new :class:`ftpose.tracking.Tracker`.
        """
        from ftpose.pipeline import DEFAULT_MIN_JOINTS, DEFAULT_MIN_SCORE
        from ftpose.tracking import Tracker

        tracker = tracker or Tracker()
        min_score = DEFAULT_MIN_SCORE if min_score is None else min_score
        min_joints = DEFAULT_MIN_JOINTS if min_joints is None else min_joints
        batch: list[np.ndarray] = []
        for frame in itertools.chain(frames, [None]):
            if frame is not None:
                batch.append(frame)
            if batch and (frame is None or len(batch) == self.batch_size):
                for people in self.predict_batch(batch):
                    yield tracker.update(people.filtered(min_score, min_joints))
                batch = []

    def decode(self, maps: PoseMaps):
        """People from merged maps, keypoints in image pixel coordinates."""
        from ftpose.grouping import decode

        return decode(maps.heatmaps, maps.pafs, self.params).scaled(*maps.cell_size)

    # -- internals --------------------------------------------------------------------

    def _decode_grid(self, height: int, width: int) -> _DecodeGrid:
        shown = shown_size(height, width, self.input_height)
        # rounded before the ceiling so that 368 / (8 / 1.5) gives 69 cells, not 70
        shape = tuple(math.ceil(round(n / self.decode_stride, 6)) for n in shown)
        cell_size = (self.decode_stride * width / shown[1], self.decode_stride * height / shown[0])
        return _DecodeGrid(shape, shown, cell_size)

    def _run(self, inputs: list[NetworkInput], run_network):
        """Yield ``([(heatmaps, pafs) per stage], input index)``, each map ``(1 or 2, C, h, w)`` (2 with flip)."""
        by_shape: dict[tuple[int, int], list[int]] = {}
        for index, item in enumerate(inputs):
            by_shape.setdefault(item.pixels.shape[:2], []).append(index)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                batch = torch.from_numpy(np.stack([inputs[i].pixels for i in chunk])).to(self.device)
                batch = normalize(batch.permute(0, 3, 1, 2))
                if self.flip:
                    batch = torch.cat([batch, batch.flip(-1)])
                stages = []
                for heatmaps, pafs in run_network(batch):
                    if self.flip:
                        mirrored = flip_maps(heatmaps[len(chunk):], pafs[len(chunk):])
                        heatmaps = torch.stack([heatmaps[:len(chunk)], mirrored[0]], 1)
                        pafs = torch.stack([pafs[:len(chunk)], mirrored[1]], 1)
                    else:
                        heatmaps, pafs = heatmaps[:, None], pafs[:, None]
                    stages.append((heatmaps, pafs))
                for k, index in enumerate(chunk):
                    yield [(heatmaps[k], pafs[k]) for heatmaps, pafs in stages], index


@dataclass
class _DecodeGrid:
    """Cells of ``decode_stride`` network-input pixels over the image at scale 1.0."""

    shape: tuple[int, int]              # (rows, cols)
    shown: tuple[int, int]              # the image's (rows, cols) in the scale-1.0 input
    cell_size: tuple[float, float]      # image pixels per cell along (x, y)


def _resample(maps: torch.Tensor, axis: int, size_out: int, map_cells_per_cell: float) -> torch.Tensor:
    """Resample ``maps`` along ``axis`` (-2 rows, -1 columns) onto ``size_out`` grid cells."""
    size_in = maps.shape[axis]
    if size_out == size_in and map_cells_per_cell == 1:
        return maps   # the grid is the network's own
    matrix = _resampling_matrix(size_out, size_in, map_cells_per_cell).to(maps)
    return matrix @ maps if axis == -2 else maps @ matrix.T


@functools.lru_cache(maxsize=64)
def _resampling_matrix(size_out: int, size_in: int, map_cells_per_cell: float) -> torch.Tensor:
    """``(size_out, size_in)`` cubic interpolation weights from a network's map to a grid.

    Output cell ``i`` covers ``map_cells_per_cell`` map cells (its network-input pixels
    over the network's stride), so its centre is map cell
    ``(i + 0.5) * map_cells_per_cell - 0.5``.  Taps past the map's edge are clamped to
    it (edge replication), as ``cv2.resize`` does.
    """
    position = (np.arange(size_out) + 0.5) * map_cells_per_cell - 0.5
    base = np.floor(position)
    weights = np.zeros((size_out, size_in))
    rows = np.arange(size_out)
    for tap in range(-1, 3):
        np.add.at(weights, (rows, np.clip(base + tap, 0, size_in - 1).astype(np.int64)),
                  _cubic(position - (base + tap)))
    return torch.from_numpy(weights.astype(np.float32))


def _cubic(distance: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.75``, the one cv2 and torch use."""
    d = np.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 BGR image of shape (H, W, 3), got {image.dtype} {image.shape} "
                         "(ftpose.files.read_image converts any image file)")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    return image
