"""What one input may cost ``ftpose predict``, and inputs that are only partly readable.

The limits, checked here on files crafted in each test:

- at most ``ftpose.files.MAX_PIXELS`` (100 million) pixels per image, read from the
  file's header before any pixel is decoded (``--max-pixels`` raises it), so a
  decompression bomb is refused without inflating it;
- a network input at most ``MAX_INPUT_ASPECT`` (4) times as wide as it is high: a
  wider image is letterboxed (scaled until its width fits, padded below), so a 1 x 5000
  strip costs what a 368 x 1472 photo does instead of 22 GB;
- a JPEG with corrupt data or a video that ends before its container's frame count
  is processed as far as it goes, reported in one ``warning:`` line, and makes the exit
  code 1 unless ``--allow-partial``.

Every case runs in a batch with a good photo, which must still be written, and no
input file may change.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import marker_network  # noqa: F401  (registers the test-marker model)
from ftpose.cli import main
from ftpose.files import MAX_PIXELS, SAMPLE_PHOTO, InputError, read_image
from ftpose.network_input import MAX_INPUT_ASPECT, prepare_network_input

REPO = Path(__file__).resolve().parents[1]


def predict(*args):
    return CliRunner().invoke(main, ["predict", "--model", "test-marker", "--threads", "1", *map(str, args)])


def hashes(folder: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def lines(result, prefix: str) -> list[str]:
    """stderr lines starting with ``prefix``, but for the warning that test-marker is untrained."""
    return [line for line in result.stderr.splitlines() if line.startswith(prefix) and "untrained" not in line]


def write_png(path: Path, width: int, height: int, rows: int | None = None) -> Path:
    """An 8-bit grey PNG of ``width x height`` zero pixels; only ``rows`` of them stored if given.

    Zeros deflate about 1000:1, so a full 12000 x 12000 image is a 140 KB decompression
    bomb; with ``rows`` the header claims a size the data never fills (the header is
    all that an honest reader may look at before refusing it).
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    deflate = zlib.compressobj(9)
    row = b"\0" * (width + 1)   # filter byte + pixels
    data = b"".join(deflate.compress(row) for _ in range(height if rows is None else rows)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(SAMPLE_PHOTO.read_bytes())
    return folder


@pytest.mark.parametrize("width, height, rows", [(12000, 12000, None), (65000, 65000, 1)],
                         ids=["bomb 12000x12000", "header 65000x65000"])
def test_an_image_over_the_pixel_limit_is_refused_from_its_header(photos, tmp_path, width, height, rows):
    bomb = write_png(photos / "bomb.png", width, height, rows)
    assert bomb.stat().st_size < 200_000
    before = hashes(photos)
    out = tmp_path / "out"
    result = predict(photos, "--out", out)
    assert result.exit_code == 1
    assert lines(result, "error:") == [f"error: {bomb}: {width} x {height} = {width * height} pixels is more than "
                                       f"the limit of {MAX_PIXELS} (--max-pixels raises it)"]
    assert "Traceback" not in result.output
    assert cv2.imread(str(out / "photos" / "good.jpg")) is not None
    assert [m["file"] for m in json.loads((out / "predictions.meta.json").read_text())["images"]] == \
        [str(photos / "good.jpg")]
    assert hashes(photos) == before


def test_max_pixels_moves_the_limit(tmp_path):
    width, height = 640, 422   # the sample photo
    refused = predict(SAMPLE_PHOTO, "--max-pixels", width * height - 1, "--out", tmp_path / "a")
    assert refused.exit_code == 1 and f"pixels is more than the limit of {width * height - 1}" in refused.stderr
    accepted = predict(SAMPLE_PHOTO, "--max-pixels", width * height, "--out", tmp_path / "b")
    assert accepted.exit_code == 0, accepted.output
    with pytest.raises(InputError, match="limit of 1000 "):
        read_image(SAMPLE_PHOTO, max_pixels=1000)


def test_a_file_far_larger_than_any_image_within_the_limit_is_not_read(tmp_path):
    path = tmp_path / "padded.png"
    path.write_bytes(b"\0" * 2_000_000)   # not even a header to go by
    with pytest.raises(InputError, match="larger than any image within the limit of 1000 pixels"):
        read_image(path, max_pixels=1000)


@pytest.mark.parametrize("height, width", [(1, 5000), (20, 1000), (5000, 1), (422, 640), (100, 400)])
def test_network_input_is_capped_in_both_dimensions(height, width):
    image = np.full((height, width, 3), 90, np.uint8)
    item = prepare_network_input(image, 368)
    rows, cols = item.shown
    assert item.pixels.shape[0] <= 368 and item.pixels.shape[1] <= MAX_INPUT_ASPECT * 368
    assert item.pixels.shape[0] % 8 == 0 and item.pixels.shape[1] % 8 == 0
    if width <= MAX_INPUT_ASPECT * height:   # within the cap: height 368, aspect kept
        assert rows == 368 and cols == max(1, round(width * 368 / height))
    else:                                    # letterboxed: full width, rows in proportion
        assert cols == MAX_INPUT_ASPECT * 368 and rows == max(1, round(height * cols / width))
    # what is not the image is padding
    assert (item.pixels[rows:] == 128).all() and (item.pixels[:, cols:] == 128).all()


def test_a_letterboxed_image_keeps_its_people_where_they_are(tmp_path):
    """A 6:1 panorama (wider than the cap) through the marker network: people found at their pixels."""
    from marker_network import MarkerNetwork, TWO_PEOPLE, to_pixels, two_halves_image
    from ftpose.predictor import Predictor

    height, width = 200, 1200
    people = Predictor(MarkerNetwork(TWO_PEOPLE)).predict(two_halves_image(height, width))
    assert len(people) == 2
    expected = to_pixels(TWO_PEOPLE, height, width)[..., :2]
    found = people.keypoints[np.argsort(people.keypoints[:, 0, 0])][..., :2]
    # the network saw it at 1472 / 1200 of its size: within a cell (8 input px) of the truth
    assert np.abs(found - expected[np.argsort(expected[:, 0, 0])]).max() < 8 * width / 1472


def test_a_1x5000_png_runs_in_bounded_memory(tmp_path):
    """Peak memory of the whole ``predict`` process, under an address-space limit it used to exceed 5x."""
    thin = write_png(tmp_path / "thin.png", 5000, 1)
    assert thin.stat().st_size < 200
    limit = 4 << 30   # before the cap this image needed 22.6 GB and died here allocating a 2 GB input
    command = [sys.executable, "-m", "ftpose", "predict", str(thin), "--model", "ftnet-light", "--threads", "1",
               "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)},
                               preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, stderr
    assert cv2.imread(str(tmp_path / "out" / "thin.jpg")).shape == (1, 5000, 3)
    peak = usage.ru_maxrss * 1024   # kilobytes on Linux
    assert peak < 1 << 30, f"peak resident memory {peak / 2**20:.0f} MiB"


def corrupt_jpeg(path: Path) -> Path:
    """The sample photo with 2000 bytes of its scan data overwritten; the end marker is intact."""
    data = bytearray(SAMPLE_PHOTO.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = b"\xaa" * 2000
    path.write_bytes(bytes(data))
    return path


def test_corrupt_jpeg_data_is_a_warning_and_exit_code_1_unless_allowed(photos, tmp_path):
    corrupt = corrupt_jpeg(photos / "corrupt.jpg")
    before = hashes(photos)
    for allow, code in [([], 1), (["--allow-partial"], 0)]:
        out = tmp_path / f"out{code}"
        result = predict(photos, "--out", out, *allow)
        assert result.exit_code == code, result.output
        warning, = lines(result, "warning:")
        assert warning.startswith(f"warning: {corrupt}: corrupt JPEG data, part of the image may be grey (libjpeg: ")
        assert not lines(result, "error:") and "Traceback" not in result.output
        assert "1 input(s) only partly read" in result.stderr
        assert not [line for line in result.stderr.splitlines() if line.startswith("Corrupt JPEG")]
        for name in ("corrupt.jpg", "good.jpg"):   # what could be decoded is still processed
            assert cv2.imread(str(out / "photos" / name)).shape == (422, 640, 3)
    assert hashes(photos) == before


def test_a_truncated_video_says_how_many_frames_were_read(photos, tmp_path):
    photo = cv2.imread(str(SAMPLE_PHOTO))
    clip = photos / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (640, 422))
    for shift in range(10):
        writer.write(np.roll(photo, 10 * shift, axis=1))
    writer.release()
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    before = hashes(photos)
    out = tmp_path / "out"
    result = predict(photos, "--out", out)
    assert result.exit_code == 1
    warning, = lines(result, "warning:")
    read = len([m for m in json.loads((out / "predictions.meta.json").read_text())["images"] if "frame" in m])
    assert 0 < read < 10
    assert warning == (f"warning: {clip}: video ends after {read} of the 10 frames its container lists "
                       "(truncated or corrupt)")
    assert cv2.imread(str(out / "photos" / "good.jpg")) is not None
    assert predict(photos, "--out", tmp_path / "allowed", "--allow-partial").exit_code == 0
    assert hashes(photos) == before
