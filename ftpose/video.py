"""Writing overlay videos that browsers play: H.264 in MP4, or VP9 in WebM, through PyAV.

OpenCV's ``mp4v`` (MPEG-4 Part 2) plays in desktop players but in no browser.  PyAV's
wheels bundle FFmpeg with an H.264 encoder (``libx264``, or ``libopenh264`` in some
builds) and ``libvpx-vp9``, so these files play in Chrome, Firefox and Safari alike.
Frames are written to a temp file beside the target and renamed once the video is
complete (:func:`ftpose.files.atomic_path`).
"""
from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from ftpose.files import InputError, atomic_path

H264_ENCODERS = ("libx264", "libopenh264", "h264")
VP9_ENCODERS = ("libvpx-vp9", "vp9")
CONTAINER_ENCODERS = {".mp4": H264_ENCODERS, ".m4v": H264_ENCODERS, ".mov": H264_ENCODERS,
                      ".mkv": H264_ENCODERS, ".webm": VP9_ENCODERS}


def encoder_for(path) -> str:
    """The first encoder this PyAV build has for ``path``'s container (by suffix)."""
    import av

    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINER_ENCODERS:
        raise InputError(path, f"overlay videos are written as {', '.join(CONTAINER_ENCODERS)}, not '{suffix}'")
    for name in CONTAINER_ENCODERS[suffix]:
        with contextlib.suppress(Exception):
            av.codec.Codec(name, "w")
            return name
    raise InputError(path, f"this PyAV build has none of the encoders {', '.join(CONTAINER_ENCODERS[suffix])}")


class _Discarded(Exception):
    """Unwinds the temp file of a video that is not kept."""


class VideoWriter:
    """BGR uint8 frames -> a browser-playable video at ``fps`` (see the module docstring).

    The frame size is taken from the first frame (odd sizes are padded by a pixel, as
    4:2:0 video needs even ones).  The file appears at ``path`` only on
    :meth:`close` with ``keep`` (leaving a ``with`` block without an error); until then
    it is a temp file beside it.
    """

    def __init__(self, path, fps: float, quality: int = 23):
        import av

        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self.quality = quality
        self.encoder = encoder_for(self.path)
        self.frames = 0
        self._stream = None
        self._stack = contextlib.ExitStack()
        temp = self._stack.enter_context(atomic_path(self.path))
        self._container = av.open(str(temp), "w")

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(keep=kind is None)

    def write(self, image: np.ndarray) -> None:
        import av

        image = np.ascontiguousarray(image)
        pad_rows, pad_cols = image.shape[0] % 2, image.shape[1] % 2
        if pad_rows or pad_cols:
            image = np.pad(image, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")
        if self._stream is None:
            self._stream = self._container.add_stream(self.encoder, rate=self.fps)
            self._stream.width, self._stream.height = image.shape[1], image.shape[0]
            self._stream.pix_fmt = "yuv420p"
            if self.encoder == "libx264":
                self._stream.options = {"crf": str(self.quality), "preset": "veryfast"}
            elif self.encoder.startswith("libvpx"):
                self._stream.options = {"crf": str(self.quality + 8), "b:v": "0", "deadline": "realtime",
                                        "cpu-used": "8"}
        elif (image.shape[1], image.shape[0]) != (self._stream.width, self._stream.height):
            raise InputError(self.path, f"frame size changed from {self._stream.width}x{self._stream.height} "
                                        f"to {image.shape[1]}x{image.shape[0]} within the video")
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
            self._container.mux(packet)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Finish the file and move it to ``path`` (``keep``, with frames written) or delete it."""
        if self._container is None:
            return
        container, self._container = self._container, None
        keep = keep and self._stream is not None
        try:
            if keep:
                for packet in self._stream.encode():
                    container.mux(packet)
            container.close()
        except BaseException as e:
            self._stack.__exit__(type(e), e, e.__traceback__)
            raise
        if keep:
            self._stack.close()
        else:
            error = _Discarded()
            self._stack.__exit__(_Discarded, error, None)
