"""COCO 2017 keypoints (annotation json + image folder) as training images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ftpose.data.annotations import AnnotatedImage
from ftpose.evaluation.coco import load_coco_annotations
from ftpose.files import InputError
from ftpose.keypoints import COCO17, NETWORK, convert

LAYOUT = COCO17


def ignored_annotation(ann: dict) -> bool:
    """Crowd regions and people without keypoints are present but unannotated."""
    return bool(ann.get("iscrowd", 0)) or ann.get("num_keypoints", 0) == 0


def _ignore_record(ann: dict) -> dict:
    # keep only what a mask needs, so thousands of images stay light in worker processes
    return {k: ann[k] for k in ("segmentation", "bbox", "iscrowd", "num_keypoints") if k in ann}


def load_coco(annotations, images) -> list[AnnotatedImage]:
    """Every image with at least one person with keypoints, from a COCO keypoints json.

    ``file_name`` is resolved against ``images``; missing files raise
    :class:`InputError` up front rather than hours into a run.
    """
    coco = load_coco_annotations(annotations)
    images = Path(images)
    if not images.is_dir():
        raise InputError(images, "image folder not found")
    out = []
    for image_id in sorted(coco.getImgIds()):
        info = coco.imgs[image_id]
        anns = coco.imgToAnns.get(image_id, [])
        people = [a for a in anns if not ignored_annotation(a)]
        if not people:
            continue
        kps = np.array([a["keypoints"] for a in people], np.float64).reshape(-1, len(LAYOUT), 3)
        boxes = np.array([a["bbox"] for a in people], np.float32).reshape(-1, 4)
        out.append(AnnotatedImage(
            path=images / info["file_name"],
            keypoints=convert(kps, LAYOUT, NETWORK),
            centers=boxes[:, :2] + boxes[:, 2:] / 2,
            heights=boxes[:, 3],
            ignore=[_ignore_record(a) for a in anns if ignored_annotation(a)],
            image_id=image_id,
        ))
    check_images_exist(out, annotations)
    return out


def check_images_exist(records: list[AnnotatedImage], source) -> None:
    """Raise one :class:`InputError` naming the first missing image and how many are missing."""
    missing = [r.path for r in records if not r.path.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(missing[0], f"image listed in {source} not found{more}")
