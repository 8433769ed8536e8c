"""Turning command-line INPUT arguments into a stream of images.

An argument is an image file, a video file or a folder (searched recursively, sorted,
for files with an image or video suffix).  Every problem with an item becomes an
:class:`~ftpose.files.InputError` for that item alone, so a batch can report it and
carry on with the rest.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ftpose.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, InputError, PartialInputWarning


@dataclass(frozen=True)
class Source:
    """One input file.

    ``name`` is the file's path relative to the argument it was found under (just the
    file name for a file argument), made unique among a run's sources; outputs are
    named after it, so no two inputs ever share an output.
    """

    path: Path
    name: Path

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_SUFFIXES


def expand_inputs(arguments: Iterable) -> tuple[list[Source], list[InputError]]:
    """Expand files and folders into sources, in argument order, folders sorted.

    Returns the sources and one error per argument that yielded nothing (missing
    path, empty folder).  A file argument is kept whatever its suffix: whether it is
    readable is found out, and reported, when it is read.
    """
    sources: list[Source] = []
    errors: list[InputError] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            label = Path(os.path.abspath(path)).name   # what "." or ".." means, so no name starts with ".."
            found = [Source(p, label / p.relative_to(path)) for p in _media_files(path)]
            if not found:
                errors.append(InputError(path, "folder contains no image or video files"))
            sources.extend(found)
        elif path.exists():
            sources.append(Source(path, Path(path.name)))
        else:
            errors.append(InputError(path, "no such file or folder"))
    return _with_unique_names(sources), errors


def _media_files(folder: Path) -> list[Path]:
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root, f) for f in files if not f.startswith(".") and Path(f).suffix.lower() in suffixes)
    return sorted(found)


def _with_unique_names(sources: list[Source]) -> list[Source]:
    """Sources renamed where two would give the same outputs (see ``ftpose.outputs.unique_names``)."""
    from ftpose.outputs import unique_names

    return [Source(source.path, name) for source, name in zip(sources, unique_names([s.name for s in sources]))]


class VideoReader:
    """Frames of a video file as uint8 BGR arrays, with a clear error if it cannot be read.

    Use as an iterable of ``(frame_index, image)``; ``frame_count`` is the container's
    (possibly approximate) count for progress bars, ``fps`` its frame rate and ``size``
    its ``(width, height)``.  A video that ends before the container's count (cut
    short in a copy or a download) is reported with a
    :class:`~ftpose.files.PartialInputWarning` after its last frame.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, "no such file")
        if self.path.stat().st_size == 0:
            raise InputError(self.path, "is empty (0 bytes)")
        # FFmpeg's own complaints ("moov atom not found") would interleave with our one-line
        # error; an explicit setting by the user wins.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise InputError(self.path, "not a readable video (unknown format or corrupt data)")
        self.frame_count = max(int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 25.0
        self.size = (int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        index = 0
        try:
            while True:
                ok, frame = self._capture.read()
                if not ok:
                    break
                yield index, frame
                index += 1
        finally:
            self._capture.release()
        if index == 0:
            raise InputError(self.path, "video has no decodable frames")
        if index < self.frame_count:
            warnings.warn(PartialInputWarning(self.path, f"video ends after {index} of the {self.frame_count} "
                                                         "frames its container lists (truncated or corrupt)"),
                          stacklevel=2)
