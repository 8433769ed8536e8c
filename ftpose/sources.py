"""Turning command-line INPUT arguments into a stream of images.

An argument is an image file, a video file, a folder (searched recursively, sorted,
for files with an image or video suffix), a camera index (``0``), a stream URL
(``rtsp://``, ``http://`` ..., opened by OpenCV) or ``-`` (one image on standard
input).  Every problem with an item becomes an :class:`~ftpose.files.InputError` for
that item alone, so a batch can report it and carry on with the rest.
"""
from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ftpose.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, InputError, PartialInputWarning

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
STDIN = "-"


@dataclass(frozen=True)
class Source:
    """One input: a file, a camera, a stream URL or standard input.

    ``name`` is the file's path relative to the argument it was found under (just the
    file name for a file argument; ``camera0``, the URL's last part or ``stdin`` for the
    others), made unique among a run's sources; outputs are named after it, so no two
    inputs ever share an output.  ``location`` is what opens a non-file source: the
    camera index or the URL.
    """

    path: Path
    name: Path
    kind: str = "file"          # "file", "camera", "url" or "stdin"
    location: str | None = None

    @property
    def is_video(self) -> bool:
        return self.kind in ("camera", "url") or (self.kind == "file" and self.path.suffix.lower() in VIDEO_SUFFIXES)

    @property
    def is_live(self) -> bool:
        """A camera or a stream: frames come once, as they happen."""
        return self.kind in ("camera", "url")

    @property
    def label(self) -> str:
        """How results and messages name the source: the file path, the URL, ``camera 0``, ``-``."""
        if self.kind == "camera":
            return f"camera {self.location}"
        return self.location if self.kind == "url" else str(self.path)


@dataclass(frozen=True)
class FolderContents:
    """What a folder argument held: images and videos found, and whether videos were kept."""

    folder: Path
    images: int
    videos: int
    videos_included: bool

    def __str__(self) -> str:
        text = f"{self.folder}: {self.images} image(s), {self.videos} video(s)"
        if self.videos and not self.videos_included:
            text += " (videos left out; --folder-videos includes them)"
        return text


def parse_live_source(argument: str) -> Source | None:
    """The camera (a bare integer), stream URL or stdin source an argument names, else None."""
    if argument == STDIN:
        return Source(Path(STDIN), Path("stdin.png"), "stdin", STDIN)
    if argument.isdigit() and not Path(argument).exists():
        return Source(Path(f"camera{argument}"), Path(f"camera{argument}.mp4"), "camera", argument)
    if argument.lower().startswith(STREAM_SCHEMES):
        stem = argument.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "stream"
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(stem).stem) or "stream"
        return Source(Path(stem), Path(stem + ".mp4"), "url", argument)
    return None


def expand_inputs(arguments: Iterable, folder_videos: bool = True,
                  on_folder: Callable[[FolderContents], None] | None = None
                  ) -> tuple[list[Source], list[InputError]]:
    """Expand files, folders and live sources into sources, in argument order, folders sorted.

    Returns the sources and one error per argument that yielded nothing (missing
    path, empty folder).  A file argument is kept whatever its suffix: whether it is
    readable is found out, and reported, when it is read.  ``folder_videos`` decides
    whether videos inside folders are included; ``on_folder`` hears what each folder
    held.
    """
    sources: list[Source] = []
    errors: list[InputError] = []
    for argument in arguments:
        live = parse_live_source(str(argument))
        if live is not None:
            sources.append(live)
            continue
        path = Path(argument)
        if path.is_dir():
            label = Path(os.path.abspath(path)).name   # what "." or ".." means, so no name starts with ".."
            files = _media_files(path)
            videos = sum(p.suffix.lower() in VIDEO_SUFFIXES for p in files)
            if on_folder is not None:
                on_folder(FolderContents(path, len(files) - videos, videos, folder_videos))
            if not folder_videos:
                files = [p for p in files if p.suffix.lower() not in VIDEO_SUFFIXES]
            found = [Source(p, label / p.relative_to(path)) for p in files]
            if not found:
                what = "image files" if not folder_videos else "image or video files"
                errors.append(InputError(path, f"folder contains no {what}"))
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

    return [Source(source.path, name, source.kind, source.location)
            for source, name in zip(sources, unique_names([s.name for s in sources]))]


def read_source_image(source: Source, max_pixels: int | None = None) -> np.ndarray:
    """The image of a still source (a file or standard input) as uint8 BGR, refused
    beyond ``max_pixels`` (default: ``ftpose.files.MAX_PIXELS``)."""
    from ftpose.files import MAX_PIXELS, decode_image, read_image

    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    if source.kind == "stdin":
        return decode_image(sys.stdin.buffer.read(), STDIN, max_pixels)
    return read_image(source.path, max_pixels)


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of a video to use: from ``start``, every ``step``-th, at most ``max_frames``."""

    start: int = 0
    step: int = 1
    max_frames: int | None = None

    def __post_init__(self):
        if self.start < 0 or self.step < 1 or (self.max_frames is not None and self.max_frames < 1):
            raise ValueError(f"invalid frame selection {self}")

    def count(self, total: int) -> int:
        """How many frames of a ``total``-frame video are selected."""
        selected = max(0, -(-(total - self.start) // self.step))
        return selected if self.max_frames is None else min(selected, self.max_frames)


class VideoReader:
    """Frames of a video file, camera or stream as uint8 BGR arrays, with a clear error
    if it cannot be read.

    ``source`` is a path or a :class:`Source`.  Use as an iterable of ``(frame_index,
    image)`` over the frames ``selection`` picks (indices count every frame of the
    video); ``frame_count`` is the number of frames that will come (from the
    container's, possibly approximate, count; 0 when unknown, as for live sources),
    ``fps`` the frame rate and ``size`` the ``(width, height)``.  A video that ends
    before the container's count (cut short in a copy or a download) is reported with
    a :class:`~ftpose.files.PartialInputWarning` after its last frame.
    """

    def __init__(self, source, selection: FrameSelection | None = None):
        source = source if isinstance(source, Source) else Source(Path(source), Path(Path(source).name))
        self.source = source
        self.path = source.path
        self.selection = selection or FrameSelection()
        # FFmpeg's own complaints ("moov atom not found") would interleave with our one-line
        # error; an explicit setting by the user wins.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        if source.kind == "camera":
            self._capture = cv2.VideoCapture(int(source.location))
            problem = "cannot open this camera (no such device, or it is busy)"
        elif source.kind == "url":
            self._capture = cv2.VideoCapture(source.location)
            problem = "cannot open this stream (unreachable, or a format OpenCV cannot read)"
        else:
            if not self.path.is_file():
                raise InputError(self.path, "no such file")
            if self.path.stat().st_size == 0:
                raise InputError(self.path, "is empty (0 bytes)")
            self._capture = cv2.VideoCapture(str(self.path))
            problem = "not a readable video (unknown format or corrupt data)"
        if not self._capture.isOpened():
            raise InputError(source.label, problem)
        self._listed_frames = 0 if source.is_live else max(int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self.frame_count = self.selection.count(self._listed_frames)
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else 25.0
        self.size = (int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        selection = self.selection
        index = produced = 0
        reached_end = False
        try:
            while selection.max_frames is None or produced < selection.max_frames:
                wanted = index >= selection.start and (index - selection.start) % selection.step == 0
                # grab() skips a frame without converting it; retrieve() only for the chosen ones
                if not self._capture.grab():
                    reached_end = True
                    break
                if wanted:
                    ok, frame = self._capture.retrieve()
                    if not ok:
                        break
                    yield index, frame
                    produced += 1
                index += 1
        finally:
            self._capture.release()
        if index == 0:
            raise InputError(self.source.label, "video has no decodable frames")
        if reached_end and index < self._listed_frames:
            warnings.warn(PartialInputWarning(self.path, f"video ends after {index} of the {self._listed_frames} "
                                                         "frames its container lists (truncated or corrupt)"),
                          stacklevel=2)


def read_photos(paths) -> list:
    """BGR photos from files and folders (searched recursively); unreadable files are errors."""
    from ftpose.files import read_image

    sources, errors = expand_inputs(paths)
    if errors:
        raise errors[0]
    photos = [read_image(s.path) for s in sources if not s.is_video]
    if not photos:
        raise InputError(paths[0], "no photos found")
    return photos
