"""Training data: dataset readers, person-centric augmentation, batching.

``build_dataset(specs, augment, targets)`` turns ``KIND:ANNOTATIONS:IMAGES[:WEIGHT]``
specs into one :class:`MixedDataset`; ``BatchStream`` orders it deterministically.
"""
from __future__ import annotations

from dataclasses import dataclass

from ftpose.data.annotations import AnnotatedImage, annotated_limbs, annotated_parts
from ftpose.data.augment import AugmentConfig, CropTransform, crop_transform
from ftpose.data.coco import load_coco
from ftpose.data.dataset import MixedDataset, PersonCentricDataset, Sample, TargetConfig, channel_weights
from ftpose.data.mpii import load_mpii
from ftpose.data.posetrack import load_posetrack
from ftpose.data.sampling import BatchStream
from ftpose.keypoints import COCO17, MPII16, POSETRACK18

# kind -> (reader, the layout whose parts it annotates)
READERS = {
    "coco": (load_coco, COCO17),
    "mpii": (load_mpii, MPII16),
    "posetrack": (load_posetrack, POSETRACK18),  # 2017 files annotate the same network parts
}


@dataclass(frozen=True)
class DataSpec:
    """One training source: ``kind`` (coco, mpii, posetrack), annotation file/folder, image root, weight."""

    kind: str
    annotations: str
    images: str
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "DataSpec":
        """Parse ``KIND:ANNOTATIONS:IMAGES[:WEIGHT]``."""
        parts = text.split(":")
        weight = 1.0
        if len(parts) == 4:
            try:
                weight = float(parts[3])
            except ValueError:
                raise ValueError(f"{text!r}: weight {parts[3]!r} is not a number") from None
            parts = parts[:3]
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{text!r}: expected KIND:ANNOTATIONS:IMAGES[:WEIGHT]")
        if parts[0] not in READERS:
            raise ValueError(f"{text!r}: unknown dataset kind {parts[0]!r} (choose from {', '.join(READERS)})")
        if weight < 0:
            raise ValueError(f"{text!r}: weight must not be negative")
        return cls(parts[0], parts[1], parts[2], weight)

    def __str__(self) -> str:
        return f"{self.kind}:{self.annotations}:{self.images}:{self.weight:g}"


def load_dataset(spec: DataSpec, augment: AugmentConfig = AugmentConfig(),
                 targets: TargetConfig = TargetConfig()) -> PersonCentricDataset:
    reader, layout = READERS[spec.kind]
    return PersonCentricDataset(reader(spec.annotations, spec.images), annotated_parts(layout),
                                augment, targets, name=spec.kind)


def build_dataset(specs: list[DataSpec], augment: AugmentConfig = AugmentConfig(),
                  targets: TargetConfig = TargetConfig()) -> MixedDataset:
    """Load and mix every source of a run."""
    return MixedDataset([load_dataset(s, augment, targets) for s in specs], [s.weight for s in specs])


__all__ = [
    "AnnotatedImage", "AugmentConfig", "BatchStream", "CropTransform", "DataSpec", "MixedDataset",
    "PersonCentricDataset", "READERS", "Sample", "TargetConfig", "annotated_limbs", "annotated_parts",
    "build_dataset", "channel_weights", "crop_transform", "load_coco", "load_dataset", "load_mpii",
    "load_posetrack",
]
