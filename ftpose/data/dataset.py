"""Training samples: person-centric crops with their target maps and loss weights.

A dataset has one sample per *anchor* person (enough labelled keypoints to be worth
centring a crop on); every annotated person in the image is drawn into the targets,
not just the anchor.  A sample is addressed by ``(index, seed)``: the seed alone
drives its augmentation, so a sample is the same whichever worker process builds
it, which is what makes resuming and multi-GPU sharding exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ftpose.data.annotations import AnnotatedImage, annotated_limbs
from ftpose.data.augment import AugmentConfig, CropTransform, crop_transform
from ftpose.files import read_image
from ftpose.network_input import STRIDE
from ftpose.targets import downsample_mask, encode, ignore_mask


@dataclass(frozen=True)
class TargetConfig:
    """How ground truth is drawn (targets.encode) and which people anchor crops."""

    sigma: float = 7.0
    paf_width: float = 8.0
    min_keypoints: int = 5   # labelled keypoints (network layout) for a person to anchor a crop


@dataclass
class Sample:
    """One augmented crop, as numpy arrays (``to_tensors`` makes the training batch item)."""

    image: np.ndarray            # (S, S, 3) uint8 BGR
    keypoints: np.ndarray        # (N, 18, 3) in crop pixels
    heatmaps: np.ndarray         # (19, S/8, S/8)
    pafs: np.ndarray             # (38, S/8, S/8)
    weight: np.ndarray           # (S/8, S/8) loss weight of each cell: 1 - ignored fraction
    heatmap_weight: np.ndarray   # (19,) 1 for parts the dataset annotates (background only if all)
    paf_weight: np.ndarray       # (38,) 1 for limbs whose both ends it annotates

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "image": torch.from_numpy(np.ascontiguousarray(self.image.transpose(2, 0, 1))),
            "heatmaps": torch.from_numpy(self.heatmaps),
            "pafs": torch.from_numpy(self.pafs),
            "weight": torch.from_numpy(self.weight[None]),
            "heatmap_weight": torch.from_numpy(self.heatmap_weight),
            "paf_weight": torch.from_numpy(self.paf_weight),
        }


def channel_weights(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel loss weights for a dataset that annotates ``parts`` (18 bools).

    A part the dataset never labels is not drawn, so the network must not be
    penalised for finding it: its heatmap, every limb touching it, and the
    background (which would claim "no part here" on top of it) get weight 0.
    """
    parts = np.asarray(parts, bool)
    heatmap = np.append(parts, parts.all()).astype(np.float32)
    paf = np.repeat(annotated_limbs(parts), 2).astype(np.float32)
    return heatmap, paf


class PersonCentricDataset(torch.utils.data.Dataset):
    """Crops centred on each anchor person of a list of :class:`AnnotatedImage`."""

    def __init__(self, images: list[AnnotatedImage], parts: np.ndarray, augment: AugmentConfig = AugmentConfig(),
                 targets: TargetConfig = TargetConfig(), name: str = "dataset"):
        self.images = images
        self.augment = augment
        self.targets = targets
        self.name = name
        self.heatmap_weight, self.paf_weight = channel_weights(parts)
        anchors = []
        for i, record in enumerate(images):
            labelled = (record.keypoints[:, :, 2] > 0).sum(1)
            for j in np.flatnonzero((labelled >= targets.min_keypoints) & (record.heights > 1)):
                anchors.append((i, j))
        self.anchors = np.array(anchors, np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.anchors)

    def sample(self, index: int, seed: int | None) -> Sample:
        """Sample ``index``; ``seed=None`` gives the un-augmented centred crop."""
        image_index, person = self.anchors[index]
        record = self.images[image_index]
        image = read_image(record.path)
        rng = None if seed is None else np.random.default_rng(seed)
        transform = crop_transform(record.centers[person], record.heights[person], self.augment, rng)
        return self._render(image, record, transform)

    def _render(self, image: np.ndarray, record: AnnotatedImage, transform: CropTransform) -> Sample:
        size = transform.size
        keypoints = transform.keypoints(record.keypoints)
        heatmaps, pafs = encode(keypoints, size, size, STRIDE, self.targets.sigma, self.targets.paf_width)
        if record.ignore:
            ignored = transform.mask(ignore_mask(record.ignore, image.shape[0], image.shape[1]))
            weight = 1.0 - downsample_mask(ignored, STRIDE)
        else:
            weight = np.ones(heatmaps.shape[1:], np.float32)
        return Sample(transform.image(image), keypoints, heatmaps, pafs, weight.astype(np.float32),
                      self.heatmap_weight, self.paf_weight)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, seed = key
        return self.sample(int(index), int(seed)).to_tensors()

    def image_path(self, index: int):
        """The image file sample ``index`` is cropped from."""
        return self.images[self.anchors[index][0]].path


class MixedDataset(torch.utils.data.Dataset):
    """Several datasets behind one index space; ``weights`` say how often each is drawn.

    A weight scales how many of a dataset's samples one epoch holds: 1 = each anchor
    once, 2 = twice, 0.5 = a random half (see :class:`ftpose.data.sampling.BatchStream`).
    """

    def __init__(self, datasets: list[PersonCentricDataset], weights: list[float] | None = None):
        if not datasets:
            raise ValueError("no datasets to mix")
        self.datasets = datasets
        self.weights = [1.0] * len(datasets) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(datasets) or any(w < 0 for w in self.weights):
            raise ValueError(f"need one non-negative weight per dataset, got {weights}")
        self.offsets = np.cumsum([0] + [len(d) for d in datasets])

    @property
    def sizes(self) -> list[int]:
        return [len(d) for d in self.datasets]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[PersonCentricDataset, int]:
        which = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.datasets[which], int(index - self.offsets[which])

    def sample(self, index: int, seed: int | None) -> Sample:
        dataset, local = self.locate(index)
        return dataset.sample(local, seed)

    def image_path(self, index: int):
        """The image file of sample ``index``, or None when its dataset cannot name one."""
        dataset, local = self.locate(index)
        name = getattr(dataset, "image_path", None)
        return None if name is None else name(local)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, seed = key
        return self.sample(int(index), int(seed)).to_tensors()
