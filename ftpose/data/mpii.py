"""MPII Human Pose: the common json list and the official ``.mat`` release.

The json list (one record per person: ``image``, ``joints`` 16x2, ``joints_vis``,
``center``, ``scale``) is the form most pose codebases ship; the official
``mpii_human_pose_v1_u12_1.mat`` is read with scipy.  MPII's ``scale`` is the
person's height divided by 200 px, so a person is ``200 * scale`` pixels tall.
MPII marks no unannotated people, so there are no ignore regions.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ftpose.data.annotations import AnnotatedImage
from ftpose.data.coco import check_images_exist
from ftpose.files import InputError, read_json
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


def _people_from_json(path: Path):
    data = read_json(path)
    if not isinstance(data, list):
        raise InputError(path, "not an MPII json list (top level is not a list)")
    for i, rec in enumerate(data):
        missing = [k for k in ("image", "joints", "joints_vis", "center", "scale") if k not in rec]
        if missing:
            raise InputError(path, f"record {i} lacks {', '.join(missing)}")
        xy = np.asarray(rec["joints"], np.float64)
        vis = np.asarray(rec["joints_vis"], np.float64)
        if xy.shape != (len(LAYOUT), 2) or vis.shape != (len(LAYOUT),):
            raise InputError(path, f"record {i} ({rec['image']}) does not have 16 joints")
        joints = np.concatenate([xy, np.where(vis > 0, 2.0, 0.0)[:, None]], 1)
        yield rec["image"], joints, rec["center"], float(rec["scale"])


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
