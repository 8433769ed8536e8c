"""PoseTrack 2017 and 2018: per-sequence json files with ignore regions.

Two formats exist and both are read:

- 2018 (COCO-like): ``images`` with ``ignore_regions_x/y`` polygons and ``is_labeled``,
  ``annotations`` with 17 keypoint slots in :data:`~ftpose.keypoints.POSETRACK18`.
- 2017 (``annolist``): per frame ``image[0].name``, ``annorect`` with
  ``annopoints[0].point`` (ids in :data:`~ftpose.keypoints.POSETRACK17` order),
  ``ignore_regions`` polygons and ``is_labeled``.

``ANNOTATIONS`` may be one json file or a folder of per-sequence files; image names
are relative to ``IMAGES`` (the dataset root).  Only labelled frames are used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftpose.data import validate
from ftpose.data.annotations import AnnotatedImage, keypoint_extent
from ftpose.data.coco import check_images_exist
from ftpose.files import InputError, read_json
from ftpose.keypoints import NETWORK, POSETRACK17, POSETRACK18, convert

LAYOUT_2017 = POSETRACK17
LAYOUT_2018 = POSETRACK18


def load_posetrack(annotations, images) -> list[AnnotatedImage]:
    """Read one PoseTrack json or every ``*.json`` in a folder (2017 or 2018 format)."""
    annotations, images = Path(annotations), Path(images)
    if not images.is_dir():
        raise InputError(images, "image folder not found")
    if annotations.is_dir():
        files = sorted(annotations.glob("*.json"))
        if not files:
            raise InputError(annotations, "folder has no .json annotation files")
    else:
        files = [annotations]
    out = []
    for path in files:
        data = read_json(path)
        if isinstance(data, dict) and "annolist" in data:
            out.extend(_frames_2017(data["annolist"], images, path))
        elif isinstance(data, dict) and "images" in data and "annotations" in data:
            out.extend(_frames_2018(data, images, path))
        else:
            raise InputError(path, "not a PoseTrack annotation file (neither 'annolist' nor 'images'/'annotations')")
        check_images_exist(out, path)
    return out


def _scalar(value, default=None):
    """The 2017 format wraps most values in one-element lists: ``[3]`` -> ``3``."""
    if isinstance(value, list):
        return value[0] if value else default
    return default if value is None else value


def _flag(value) -> bool:
    return bool(_scalar(value, 1))


def _polygon_record(xs, ys) -> dict | None:
    xs, ys = np.asarray(xs, np.float64).ravel(), np.asarray(ys, np.float64).ravel()
    if len(xs) < 3 or len(xs) != len(ys):
        return None
    poly = np.stack([xs, ys], 1)
    lo, hi = poly.min(0), poly.max(0)
    return {"segmentation": [poly.ravel().tolist()], "iscrowd": 1, "num_keypoints": 0,
            "bbox": [*lo.tolist(), *(hi - lo).tolist()]}


def read_images_2018(data: dict, source: Path, layout=LAYOUT_2018):
    """The one parser of PoseTrack 2018 (COCO-like) files, for training and evaluation.

    Yields ``(image record, [(annotation, keypoints (K, 3) or None when it has none)])``
    per image, ``K = len(layout)``.  Records without ids, keypoint lists of the wrong
    length and non-numeric or non-finite values are one-line
    :class:`~ftpose.files.InputError`s naming the record.
    """
    by_image: dict = {}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise InputError(source, f"annotations[{i}] lacks 'image_id'")
        by_image.setdefault(ann["image_id"], []).append(ann)
    for i, info in enumerate(data["images"]):
        if not isinstance(info, dict) or "id" not in info or "file_name" not in info:
            raise InputError(source, f"images[{i}] lacks 'id' or 'file_name'")
        yield info, [(ann, _keypoints_2018(ann, layout, source)) for ann in by_image.get(info["id"], [])]


def _keypoints_2018(ann: dict, layout, source: Path) -> np.ndarray | None:
    values = ann.get("keypoints")
    return keypoint_triples(values, layout, source, f"annotation {ann.get('id')}") if values else None


def keypoint_triples(values, layout, source, what: str) -> np.ndarray:
    """A flat ``[x, y, v, ...]`` list of ``len(layout)`` keypoints as a ``(K, 3)`` array:
    numbers, the right count, finite; else a one-line error naming ``what``."""
    try:
        kps = np.asarray(values, np.float64).ravel()
    except (TypeError, ValueError):
        raise InputError(source, f"{what}: keypoints are not numbers") from None
    if kps.size != 3 * len(layout):
        raise InputError(source, f"{what} has {kps.size} keypoint values, expected {3 * len(layout)}")
    return validate.numbers(kps, source, what, "keypoints").reshape(-1, 3)


def _frames_2018(data: dict, images: Path, source: Path):
    for i, (info, records) in enumerate(read_images_2018(data, source)):
        if not info.get("is_labeled", True):
            continue
        people, ignore = [], []
        for xs, ys in zip(info.get("ignore_regions_x", []), info.get("ignore_regions_y", [])):
            if (rec := _polygon_record(xs, ys)) is not None:
                ignore.append(rec)
        for a, kps in records:
            if kps is None or np.count_nonzero(kps[:, 2]) == 0:
                if "bbox" in a:  # a boxed person without keypoints: present but unannotated
                    ignore.append({"bbox": list(a["bbox"]), "iscrowd": 0, "num_keypoints": 0})
                continue
            people.append((kps, a.get("bbox")))
        if not people:
            continue
        source_kps = np.stack([p for p, _ in people])
        kps = convert(source_kps, LAYOUT_2018, NETWORK)
        centers, heights = keypoint_extent(source_kps)  # head top included; boxes override below
        for j, (_, box) in enumerate(people):
            if box is not None and len(box) == 4 and box[3] > 0:
                centers[j] = (box[0] + box[2] / 2, box[1] + box[3] / 2)
                heights[j] = box[3]
        yield AnnotatedImage(path=images / info["file_name"], keypoints=kps, centers=centers,
                             heights=heights, ignore=ignore, image_id=info.get("id", i))


@dataclass
class Rect2017:
    """One ``annorect`` of a 2017 frame: joints ``(15, 3)`` (x, y, visibility 2 visible /
    1 occluded / 0 absent, :data:`LAYOUT_2017` order), head box ``(x1, y1, x2, y2)`` or
    None, track id (-1 when absent)."""

    joints: np.ndarray
    head_box: list | None
    track_id: int


@dataclass
class Frame2017:
    """One ``annolist`` entry: image name, whether it is labelled, its rects and ignore polygons."""

    image: str
    labeled: bool
    rects: list
    ignore_xs: list
    ignore_ys: list


def read_annolist_2017(annolist: list, source: Path):
    """The one parser of PoseTrack 2017 ``annolist`` entries, for training and evaluation.

    Joint ids outside 0..14 and non-numeric or non-finite coordinates are one-line
    :class:`~ftpose.files.InputError`s naming the image, the rect and the point.
    """
    for i, entry in enumerate(annolist):
        try:
            image = _scalar(entry["image"])["name"]
        except (KeyError, IndexError, TypeError):
            raise InputError(source, f"annolist[{i}] has no image name") from None
        rects = []
        for r, rect in enumerate(entry.get("annorect") or []):
            joints = np.zeros((len(LAYOUT_2017), 3))
            for p in (_scalar(rect.get("annopoints")) or {}).get("point", []):
                k = int(_scalar(p["id"]))
                what = f"{image}: annorect {r} point {k}"
                if not 0 <= k < len(LAYOUT_2017):
                    raise InputError(source, f"{what}: joint id {k} is not a PoseTrack 2017 joint (0..14)")
                visible = _scalar(p.get("is_visible"), 1)
                joints[k] = (validate.number(_scalar(p["x"]), source, what, "x"),
                             validate.number(_scalar(p["y"]), source, what, "y"),
                             1.0 if visible in (0, "0", False) else 2.0)
            head = [_scalar(rect[k]) for k in ("x1", "y1", "x2", "y2")] if all(
                k in rect for k in ("x1", "y1", "x2", "y2")) else None
            rects.append(Rect2017(joints, head, int(_scalar(rect.get("track_id"), -1))))
        regions = entry.get("ignore_regions") or []
        yield Frame2017(image, _flag(entry.get("is_labeled", [1])), rects,
                        [[_scalar(p["x"]) for p in region.get("point", [])] for region in regions],
                        [[_scalar(p["y"]) for p in region.get("point", [])] for region in regions])


def _frames_2017(annolist: list, images: Path, source: Path):
    for frame in read_annolist_2017(annolist, source):
        if not frame.labeled:
            continue
        ignore = [rec for xs, ys in zip(frame.ignore_xs, frame.ignore_ys)
                  if (rec := _polygon_record(xs, ys)) is not None]
        people = [rect.joints for rect in frame.rects if rect.joints[:, 2].any()]
        if not people:
            continue
        source_kps = np.stack(people)
        centers, heights = keypoint_extent(source_kps)  # 2017 has head boxes only, no body boxes
        yield AnnotatedImage(path=images / frame.image, keypoints=convert(source_kps, LAYOUT_2017, NETWORK),
                             centers=centers, heights=heights,
                             ignore=ignore, image_id=frame.image)
