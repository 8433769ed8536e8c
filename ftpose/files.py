"""Reading inputs with clear errors and writing outputs atomically.

Every user-facing failure about a file is an :class:`InputError` whose message names
the file and the problem in one line; batch jobs catch it, report the item and go on.
Outputs go through :func:`atomic_write` (temp file in the same folder + rename), so an
interrupted run never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
SAMPLE_PHOTO = Path(__file__).resolve().parent / "assets" / "000000000790.jpg"
"""The bundled photo (COCO 790, CC BY 2.0, see assets/SAMPLE_LICENSE.md): the default input."""

MAX_PIXELS = 100_000_000
"""The largest image (width x height) :func:`read_image` decodes by default: 100
megapixels, 0.3 GB as 8-bit BGR, more than any camera's photos but for 200-megapixel
sensors.  It is checked on the file's header before any pixel is decoded, so a
decompression bomb (a few kilobytes of PNG that inflate to gigabytes) is refused
unread; ``ftpose predict --max-pixels`` raises it."""

_BYTES_PER_PIXEL = 8
"""The most bytes one pixel can take in a file (16-bit RGBA, stored raw): a file larger
than ``MAX_PIXELS * 8`` plus its headers cannot be an image within the limit."""

_LIBJPEG_CORRUPTION = re.compile(rb"Corrupt JPEG data[^\n]*|Premature end of JPEG file[^\n]*")
"""libjpeg's warnings for an image it decoded only in part (the rest left grey)."""


class InputError(ValueError):
    """A problem with a user-supplied file; ``str()`` is a one-line message naming it."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class PartialInputWarning(UserWarning):
    """An input was only partly readable (corrupt JPEG data, a video cut short).

    What could be read is still returned, because a batch of photos or a long video
    should not lose everything over one bad stretch; ``str()`` is a one-line message
    naming the file, and ``ftpose predict`` turns it into a warning and exit code 1
    unless ``--allow-partial``.
    """

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def read_image(path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as an 8-bit 3-channel BGR array.

    Grayscale is expanded to 3 channels, alpha is composited over mid-grey (the
    network's padding value), and 16-bit images are scaled to 8 bits.  A missing,
    empty, undecodable or truncated file, or one with more than ``max_pixels`` pixels
    (checked before decoding), raises :class:`InputError`; a JPEG whose data libjpeg
    finds corrupt is returned as decoded and reported with a
    :class:`PartialInputWarning`.
    """
    path = Path(path)
    size = _header_size(path)
    if size is not None:
        _check_pixels(path, *size, max_pixels)
    try:
        if path.stat().st_size > max_pixels * _BYTES_PER_PIXEL + (1 << 20):
            raise InputError(path, f"{path.stat().st_size} bytes is larger than any image within the limit "
                                   f"of {max_pixels} pixels (--max-pixels)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not an image") from None
    except OSError as e:
        raise InputError(path, f"cannot be read ({e.strerror or e})") from None
    return decode_image(data, path, max_pixels)


def decode_image(data: bytes, name, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file's bytes as :func:`read_image` does; ``name`` names them in errors.

    The pixel limit is checked on the header before decoding, as for files, so an
    upload of a few kilobytes cannot decode into gigabytes.
    """
    if not data:
        raise InputError(name, "is empty (0 bytes)")
    size = _header_size(io.BytesIO(data))   # before decoding: a small file may hold a huge image
    if size is not None:
        _check_pixels(name, *size, max_pixels)
    is_jpeg = data[:2] == b"\xff\xd8"
    if is_jpeg and b"\xff\xd9" not in data[-64:].rstrip(b"\x00\r\n "):
        raise InputError(name, "truncated JPEG (no end-of-image marker)")
    try:
        with _native_stderr() as messages:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:   # OpenCV's own limits, for formats whose header Pillow cannot read
        raise InputError(name, f"cannot be decoded ({e.err or e})") from None
    corruption = _LIBJPEG_CORRUPTION.findall(messages.getvalue()) if is_jpeg else []
    other = _LIBJPEG_CORRUPTION.sub(b"", messages.getvalue()).strip()
    if other:   # not ours to judge (libpng's notes on colour profiles, say): passed on
        sys.stderr.write(other.decode(errors="replace") + "\n")
    if image is None:
        raise InputError(name, "not a readable image (unknown format or corrupt data)")
    _check_pixels(name, image.shape[1], image.shape[0], max_pixels)
    if corruption:
        detail = corruption[0].decode(errors="replace").strip()
        warnings.warn(PartialInputWarning(name, f"corrupt JPEG data, part of the image may be grey (libjpeg: {detail})"),
                      stacklevel=3)
    return to_bgr8(image)


def _header_size(path) -> tuple[int, int] | None:
    """``(width, height)`` from the header of a file (a path or file object), no pixels decoded; None if Pillow cannot tell."""
    from PIL import Image, UnidentifiedImageError

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None   # ftpose applies its own limit to the size read here
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None   # missing, unreadable or an unknown format: read_image says which
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _check_pixels(path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InputError(path, f"{width} x {height} = {width * height} pixels is more than the limit of "
                               f"{max_pixels} (--max-pixels raises it)")


@contextlib.contextmanager
def _native_stderr():
    """Collect what C libraries (libjpeg, libpng) write to file descriptor 2 meanwhile.

    libjpeg reports corrupt data only as a line on stderr; catching it is how a
    half-grey photo becomes a :class:`PartialInputWarning` instead of a stray line.
    """
    import io

    collected = io.BytesIO()
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield collected
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            collected.write(capture.read())


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Normalise any decoded image (gray, BGRA, 16-bit, float) to uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3] * alpha + 128.0 * (1.0 - alpha)).round().astype(np.uint8)
    elif image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image)


@contextlib.contextmanager
def atomic_path(path):
    """A temp file name beside ``path`` (same suffix), renamed over ``path`` on success.

    For writers that insist on a file name rather than a file object, such as
    ``cv2.VideoWriter``, which picks its container from the suffix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _give_default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Open a temp file beside ``path``; on success fsync it and rename it over ``path``."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def _give_default_permissions(path) -> None:
    """``mkstemp`` makes owner-only files; give the result the usual ``0o666 & ~umask``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_json(path, obj, indent: int | None = None) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=indent)


def write_image(path, image: np.ndarray) -> None:
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise InputError(path, "cannot encode an image with this file extension")
    with atomic_write(path) as f:
        f.write(buf.tobytes())


def check_record(source, what: str, record, fields) -> None:
    """Raise :class:`InputError` naming ``source`` unless ``record`` (called ``what``, e.g.
    ``"record 3"``) is a JSON object holding every one of ``fields``."""
    if not isinstance(record, dict):
        raise InputError(source, f"{what} is not an object")
    missing = [k for k in fields if k not in record]
    if missing:
        raise InputError(source, f"{what} lacks {', '.join(missing)}")


def read_json(path):
    """Load a JSON file, turning every failure into a one-line :class:`InputError`."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except json.JSONDecodeError as e:
        raise InputError(path, f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot be read ({e})") from None
