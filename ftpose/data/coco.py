"""COCO 2017 keypoints: the annotation file's reader (training and evaluation) and training images."""
from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from ftpose.data import validate
from ftpose.data.annotations import AnnotatedImage
from ftpose.files import InputError, read_json
from ftpose.keypoints import COCO17, NETWORK, convert

LAYOUT = COCO17


def load_coco_annotations(ann) -> COCO:
    """A pycocotools ``COCO`` from a path, a dict or an existing ``COCO``, validated.

    Raises :class:`InputError` naming the file when keys are missing or a record fails
    :func:`validate_records` (e.g. not 17 finite keypoint triplets).
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
    for i, a in enumerate(data["annotations"]):
        missing = [k for k in ("image_id", "keypoints", "bbox", "area") if k not in a]
        if missing:
            raise InputError(source, f"annotations[{i}] (id {a.get('id')}) lacks {', '.join(missing)}")
    validate_records(data, source)
    for a in data["annotations"]:
        a.setdefault("iscrowd", 0)
        a.setdefault("num_keypoints", int(np.count_nonzero(np.asarray(a["keypoints"])[2::3])))
    data.setdefault("categories", [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoints),
                                    "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton]}])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def validate_records(data: dict, source) -> None:
    """Every image and annotation record checked (:mod:`ftpose.data.validate`): a bad one is an
    :class:`InputError` naming the file, the record and the field; tolerated oddities are counted
    in one :class:`~ftpose.data.validate.AnnotationWarning`.

    Errors: repeated image or annotation ids, an ``image_id`` the file does not list, a
    ``file_name`` outside the images folder, a width or height that is not positive,
    keypoints that are not 51 finite numbers with visibility 0, 1 or 2, a non-finite
    ``bbox`` or one of negative size, a non-finite or negative ``area``.  Counted:
    zero-sized boxes and ``num_keypoints`` that disagree with the labelled keypoints.
    """
    images, anns = data["images"], data["annotations"]
    validate.unique([im["id"] for im in images], source, "image id")
    for i, im in enumerate(images):
        record = f"images[{i}] (id {im['id']})"
        if "file_name" in im:
            validate.image_name(im["file_name"], source, record)
        for key in ("width", "height"):
            validate.number(im[key], source, record, key, positive=True)
    known = {im["id"] for im in images}
    validate.unique([a["id"] for a in anns if "id" in a], source, "annotation id")
    problems = validate.Problems(source)
    arrays = _annotation_arrays(anns)
    for i, a in enumerate(anns) if arrays is None else ():  # some record is bad: find it, name it
        record = f"annotations[{i}] (id {a.get('id')})"
        keypoints = validate.numbers(a["keypoints"], source, record, "keypoints", (3 * len(COCO17),))
        validate.visibility(keypoints[2::3], (0, 1, 2), source, record, "keypoints")
        validate.box(a["bbox"], source, record, "bbox", problems)
        if validate.number(a["area"], source, record, "area") < 0:
            raise InputError(source, f"{record}: 'area' is {a['area']}, must not be negative")
    if arrays is None:
        arrays = _annotation_arrays(anns)
        if arrays is None:
            raise InputError(source, "annotations are malformed (keypoints, bbox or area)")
    keypoints, boxes, _ = arrays
    for i, a in enumerate(anns):
        if a["image_id"] not in known:
            raise InputError(source, f"annotations[{i}] (id {a.get('id')}): 'image_id' {a['image_id']!r} "
                                     f"is not one of the file's images")
    for _ in range(int((boxes[:, 2:] == 0).any(1).sum())):
        problems.add("annotations with a zero-sized 'bbox'")
    declared = np.array([a.get("num_keypoints", -1) for a in anns])
    labelled = np.count_nonzero(keypoints[:, 2::3], 1)
    for _ in range(int(((declared >= 0) & (declared != labelled)).sum())):
        problems.add("annotations whose 'num_keypoints' differs from their labelled keypoints")
    problems.report()


def _annotation_arrays(anns: list[dict]):
    """``(keypoints (N, 51), boxes (N, 4), areas (N,))`` when every record is valid, else None.

    One vectorised pass over the file (COCO train has 262k records); only when it fails
    do the per-record checks run, to name the bad one.
    """
    if not anns:
        return np.zeros((0, 3 * len(COCO17))), np.zeros((0, 4)), np.zeros((0, 1))
    try:
        arrays = [np.array([a[key] for a in anns]) for key in ("keypoints", "bbox", "area")]
    except (TypeError, ValueError):  # ragged
        return None
    if any(array.dtype.kind not in "iuf" for array in arrays):  # strings, booleans, nulls
        return None
    try:
        keypoints, boxes, areas = (array.astype(np.float64).reshape(len(anns), -1) for array in arrays)
    except ValueError:
        return None
    if keypoints.shape[1] != 3 * len(COCO17) or boxes.shape[1] != 4 or areas.shape[1] != 1:
        return None
    finite = np.isfinite(keypoints).all() and np.isfinite(boxes).all() and np.isfinite(areas).all()
    if not finite or not np.isin(keypoints[:, 2::3], (0, 1, 2)).all() or (boxes[:, 2:] < 0).any() or (areas < 0).any():
        return None
    return keypoints, boxes, areas


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
