"""Checks every annotation parser applies as it reads a record, so bad data never trains or scores.

One NaN keypoint in an annotation file used to give a model whose every weight was NaN.
Each check here raises :class:`~ftpose.files.InputError` with one line naming the file,
the record and the field; problems a user may reasonably want to train or score
anyway (a zero-sized box, a keypoint count that disagrees with the keypoints) are
counted instead and reported once per file as an :class:`AnnotationWarning`.
"""
from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from ftpose.files import InputError


class AnnotationWarning(UserWarning):
    """Annotation records that load but look wrong; the message counts them."""


class Problems:
    """Per-file counts of tolerated problems; :meth:`report` warns once with all of them."""

    def __init__(self, source):
        self.source = source
        self.counts: Counter[str] = Counter()

    def add(self, what: str) -> None:
        self.counts[what] += 1

    def report(self) -> None:
        if self.counts:
            listed = "; ".join(f"{n} {what}" for what, n in self.counts.items())
            warnings.warn(AnnotationWarning(f"{self.source}: {listed}"), stacklevel=3)


def numbers(values, source, record: str, field: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``values`` as a finite float64 array of ``shape``, or an :class:`InputError` naming the field."""
    if values is None:
        raise InputError(source, f"{record}: '{field}' is null")
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):  # ragged nesting
        array = np.asarray([None])
    if array.dtype.kind not in "iuf":  # strings, booleans, nulls inside
        raise InputError(source, f"{record}: '{field}' holds values that are not numbers")
    array = array.astype(np.float64)
    if shape is not None and array.shape != shape:
        if array.size == math.prod(shape):
            array = array.reshape(shape)
        else:
            raise InputError(source, f"{record}: '{field}' has {array.size} values, expected {math.prod(shape)}")
    bad = ~np.isfinite(array)
    if bad.any():
        first = np.flatnonzero(bad.ravel())[0]
        raise InputError(source, f"{record}: '{field}' value {first} is {array.ravel()[first]} (not finite)")
    return array


def number(value, source, record: str, field: str, positive: bool = False) -> float:
    """One finite number (``positive``: also > 0)."""
    result = float(numbers(value, source, record, field, ()))
    if positive and result <= 0:
        raise InputError(source, f"{record}: '{field}' is {result:g}, must be positive")
    return result


def visibility(flags: np.ndarray, allowed: tuple[float, ...], source, record: str, field: str) -> None:
    """Every flag is one of ``allowed`` (COCO: 0, 1, 2; MPII: 0, 1)."""
    bad = ~np.isin(flags, allowed)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InputError(source, f"{record}: '{field}' flag of joint {k} is {flags[k]:g} "
                                 f"(allowed: {', '.join(f'{a:g}' for a in allowed)})")


def box(values, source, record: str, field: str, problems: Problems) -> np.ndarray:
    """A COCO ``[x, y, w, h]`` box: finite, no negative size; a zero size is only counted."""
    result = numbers(values, source, record, field, (4,))
    if (result[2:] < 0).any():
        raise InputError(source, f"{record}: '{field}' {result.tolist()} has a negative size")
    if (result[2:] == 0).any():
        problems.add(f"annotations with a zero-sized '{field}'")
    return result


def unique(ids, source, what: str) -> None:
    """No id appears twice among ``ids`` (``what``: e.g. "image id")."""
    seen = Counter(ids)
    repeated = [i for i, n in seen.items() if n > 1]
    if repeated:
        raise InputError(source, f"duplicate {what} {repeated[0]!r} ({seen[repeated[0]]} records"
                                 f"{f', and {len(repeated) - 1} more duplicated ids' if len(repeated) > 1 else ''})")


def image_name(name, source, record: str, field: str = "file_name") -> str:
    """A relative image path that stays inside the images folder (no absolute path, no ``..`` out)."""
    if not isinstance(name, str) or not name:
        raise InputError(source, f"{record}: '{field}' is {name!r}, not a file name")
    normal = os.path.normpath(name.replace("\\", "/"))
    if os.path.isabs(normal) or Path(name).is_absolute() or normal == ".." or normal.startswith("../"):
        raise InputError(source, f"{record}: '{field}' {name!r} points outside the images folder")
    return name
