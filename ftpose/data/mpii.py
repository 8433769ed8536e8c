"""MPII Human Pose: the common json list and the official ``.mat`` release.

The json list (one record per person: ``image``, ``joints`` 16x2, ``joints_vis``,
``center``, ``scale``) is the form most pose codebases ship; the official
``mpii_human_pose_v1_u12_1.mat`` is read with scipy.  MPII's ``scale`` is the
person's height divided by 200 px, so a person is ``200 * scale`` pixels tall.
MPII marks no unannotated people, so there are no ignore regions.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftpose.data import validate
from ftpose.data.annotations import AnnotatedImage
from ftpose.data.coco import check_images_exist
from ftpose.files import InputError, check_record, read_json
from ftpose.keypoints import MPII16, NETWORK, convert

LAYOUT = MPII16
SCALE_REFERENCE = 200.0  # MPII scale = person height / 200 px


def load_mpii(annotations, images) -> list[AnnotatedImage]:
    """Read MPII annotations from a ``.json`` list or the official ``.mat`` file."""
    annotations = Path(annotations)
    if not Path(images).is_dir():
        raise InputError(images, "image folder not found")
    if annotations.suffix.lower() == ".mat":
        people = _people_from_mat(annotations)
    else:
        people = _people_from_json(annotations)
    by_image: dict[str, list] = defaultdict(list)
    for name, joints, center, scale in people:
        by_image[name].append((joints, center, scale))
    out = []
    for name in sorted(by_image):
        joints, centers, scales = zip(*by_image[name])
        out.append(AnnotatedImage(
            path=Path(images) / name,
            keypoints=convert(np.stack(joints), LAYOUT, NETWORK),
            centers=np.array(centers),
            heights=SCALE_REFERENCE * np.array(scales),
            image_id=name,
        ))
    check_images_exist(out, annotations)
    return out


@dataclass
class MpiiJsonPerson:
    """One record of the common MPII json list, validated (:func:`read_mpii_json`)."""

    image: str
    joints: np.ndarray            # (16, 2) x, y in MPII16 order
    labelled: np.ndarray          # (16,) bool: joints_vis > 0
    center: np.ndarray | None     # (2,) the person's centre, when given
    scale: float | None           # the person's height / 200 px, when given
    head_box: np.ndarray | None   # (4,) x1, y1, x2, y2, when given


def read_mpii_json(path) -> list[MpiiJsonPerson]:
    """The MPII json list (``image``, ``joints`` 16x2, ``joints_vis``, optional ``center``,
    ``scale``, ``head_box``), shared by training and evaluation.

    Every record is checked (:mod:`ftpose.data.validate`): finite numbers of the right
    shape, visibility flags 0 or 1, a positive scale, a head box without negative size,
    an image name inside the images folder; a bad one is an :class:`InputError` naming
    the file, the record and the field.
    """
    data = read_json(path)
    if not isinstance(data, list):
        raise InputError(path, "not an MPII json list (top level is not a list)")
    people = []
    for i, rec in enumerate(data):
        check_record(path, f"record {i}", rec, ("image", "joints", "joints_vis"))
        record = f"record {i} ({rec['image']})"
        image = validate.image_name(rec["image"], path, record, "image")
        joints = validate.numbers(rec["joints"], path, record, "joints", (len(LAYOUT), 2))
        flags = validate.numbers(rec["joints_vis"], path, record, "joints_vis", (len(LAYOUT),))
        validate.visibility(flags, (0, 1), path, record, "joints_vis")
        center = None if rec.get("center") is None else validate.numbers(rec["center"], path, record, "center", (2,))
        scale = None if rec.get("scale") is None else validate.number(rec["scale"], path, record, "scale",
                                                                       positive=True)
        box = None
        if rec.get("head_box") is not None:
            box = validate.numbers(rec["head_box"], path, record, "head_box", (4,))
            if box[2] < box[0] or box[3] < box[1]:
                raise InputError(path, f"{record}: 'head_box' {box.tolist()} has a negative size "
                                       f"(expected x1, y1, x2, y2)")
        people.append(MpiiJsonPerson(image, joints, flags > 0, center, scale, box))
    return people


def _people_from_json(path: Path):
    for i, person in enumerate(read_mpii_json(path)):
        if person.center is None or person.scale is None:  # training crops around them
            raise InputError(path, f"record {i} ({person.image}) lacks center or scale, which training needs")
        joints = np.concatenate([person.joints, np.where(person.labelled, 2.0, 0.0)[:, None]], 1)
        yield person.image, joints, person.center, person.scale


def _as_list(value):
    """scipy's ``squeeze_me`` turns 1-element struct arrays into scalars; undo that."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _number(value):
    """A scalar from a .mat field that may be a number, a 1-element array, a string or empty."""
    arr = np.asarray(value).ravel()
    if arr.size == 0:
        return None
    try:
        return float(arr[0])
    except (TypeError, ValueError):
        return None


def read_mpii_release(path: Path):
    """Annotated people of the official MPII release ``.mat``: ``(image, is_train, rect)``.

    ``rect`` is the raw ``annorect`` struct of one person that has ``annopoints``; the
    training set and the evaluation read the fields they need from it.  The one reader
    of the ``.mat`` layout in the project.
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        release = loadmat(path, struct_as_record=False, squeeze_me=True)["RELEASE"]
    except (MatReadError, ValueError, OSError) as e:
        raise InputError(path, f"not a readable .mat file ({e})") from None
    except KeyError:
        raise InputError(path, "not the MPII release (no RELEASE struct)") from None
    annolist = _as_list(getattr(release, "annolist", None))
    train = np.atleast_1d(getattr(release, "img_train", np.ones(len(annolist))))
    for entry, is_train in zip(annolist, train):
        for rect in _as_list(getattr(entry, "annorect", None)):
            if "annopoints" in getattr(rect, "_fieldnames", ()):
                yield entry.image.name, bool(is_train), rect


def mat_points(rect) -> list:
    """The labelled points of one ``annorect`` (empty when it has none)."""
    return _as_list(getattr(rect.annopoints, "point", None))


def _people_from_mat(path: Path):
    for name, is_train, rect in read_mpii_release(path):
        fields = rect._fieldnames
        if not is_train or "scale" not in fields or "objpos" not in fields:
            continue
        scale = _number(rect.scale)
        points = mat_points(rect)
        if scale is None or not points:
            continue
        joints = np.zeros((len(LAYOUT), 3))
        for p in points:
            visible = _number(getattr(p, "is_visible", None))
            # is_visible is sometimes missing or empty: the joint is labelled, visibility unknown
            joints[int(p.id)] = (p.x, p.y, 1.0 if visible == 0 else 2.0)
        yield name, joints, (float(rect.objpos.x), float(rect.objpos.y)), scale
