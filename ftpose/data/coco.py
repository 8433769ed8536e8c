"""COCO 2017 keypoints: the annotation file's reader (training and evaluation) and training images."""
from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from ftpose.data.annotations import AnnotatedImage
from ftpose.files import InputError, read_json
from ftpose.keypoints import COCO17, NETWORK, convert

LAYOUT = COCO17


def load_coco_annotations(ann) -> COCO:
    """A pycocotools ``COCO`` from a path, a dict or an existing ``COCO``, validated.

    Raises :class:`InputError` naming the file when keys are missing or an annotation
    does not carry 17 keypoint triplets.
    """
    if isinstance(ann, COCO):
        return ann
    source = "<dict>" if isinstance(ann, dict) else ann
    data = copy.deepcopy(ann) if isinstance(ann, dict) else read_json(ann)
    if not isinstance(data, dict):
        raise InputError(source, "not a COCO annotation file (top level is not an object)")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise InputError(source, f"not a COCO annotation file (missing '{key}' list)")
    for i, im in enumerate(data["images"]):
        missing = [k for k in ("id", "width", "height") if k not in im]
        if missing:
            raise InputError(source, f"images[{i}] lacks {', '.join(missing)}")
    expected = 3 * len(COCO17)
    for i, a in enumerate(data["annotations"]):
        missing = [k for k in ("image_id", "keypoints") if k not in a]
        if missing:
            raise InputError(source, f"annotations[{i}] (id {a.get('id')}) lacks {', '.join(missing)}")
        if len(a["keypoints"]) != expected:
            raise InputError(source, f"annotations[{i}] (id {a.get('id')}) has {len(a['keypoints'])} keypoint "
                                     f"values, expected {expected} (17 x, y, v)")
        a.setdefault("iscrowd", 0)
        a.setdefault("num_keypoints", int(np.count_nonzero(np.asarray(a["keypoints"])[2::3])))
        if "area" not in a or "bbox" not in a:
            raise InputError(source, f"annotations[{i}] (id {a.get('id')}) lacks 'area' or 'bbox'")
    data.setdefault("categories", [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoints),
                                    "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton]}])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco



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
