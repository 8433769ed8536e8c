"""Bad inputs to ``ftpose predict``: one clear line each, the rest still processed.

Every broken file is made from a real photo (the bundled sample, so these tests never
skip): truncated, emptied, or replaced by text; grayscale, RGBA and 16-bit PNGs must
work after conversion.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import marker_network  # noqa: F401  (registers the test-marker model)
from ftpose.cli import main
from ftpose.files import SAMPLE_PHOTO
from ftpose.files import InputError
from ftpose.sources import VideoReader, expand_inputs


def predict(*args):
    return CliRunner().invoke(main, ["predict", "--model", "test-marker", *map(str, args)])


def make_broken(folder, kind: str):
    """A broken file of ``kind`` in ``folder`` and the problem it must be reported with."""
    photo = SAMPLE_PHOTO.read_bytes()
    if kind == "missing":
        return folder / "missing.jpg", "no such file"
    if kind == "not an image":
        path = folder / "notes.jpg"
        path.write_text("these are not pixels\n")
        return path, "not a readable image"
    if kind == "zero bytes":
        path = folder / "empty.png"
        path.write_bytes(b"")
        return path, "is empty (0 bytes)"
    if kind == "truncated JPEG":
        path = folder / "truncated.jpg"
        path.write_bytes(photo[: len(photo) // 2])
        return path, "truncated JPEG"
    if kind == "unreadable video":
        path = folder / "broken.mp4"
        write_clip(path)
        path.write_bytes(path.read_bytes()[:2000])   # cut before the index mp4 keeps at the end
        return path, "not a readable video"
    raise ValueError(kind)


def write_clip(path, frames: int = 3):
    """A short real video: the sample photo panning sideways."""
    photo = cv2.imread(str(SAMPLE_PHOTO))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (640, 422))
    for shift in range(frames):
        writer.write(np.roll(photo, 10 * shift, axis=1))
    writer.release()


BROKEN = ["missing", "not an image", "zero bytes", "truncated JPEG", "unreadable video"]


@pytest.mark.parametrize("kind", BROKEN)
def test_each_broken_file_gives_one_line_naming_it(tmp_path, kind):
    path, problem = make_broken(tmp_path, kind)
    result = predict(path, "--out", tmp_path / "out")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {path}: ") and problem in errors[0]
    assert "Traceback" not in result.output


def convertible(folder, kind: str):
    photo = cv2.imread(str(SAMPLE_PHOTO))
    path = folder / f"{kind}.png"
    if kind == "grayscale":
        image = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    elif kind == "rgba":
        image = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
        image[: image.shape[0] // 2, :, 3] = 128        # half transparent
    else:  # 16-bit
        image = photo.astype(np.uint16) * 257
    assert cv2.imwrite(str(path), image)
    return path


@pytest.mark.parametrize("kind", ["grayscale", "rgba", "16bit"])
def test_grayscale_rgba_and_16bit_pngs_work(tmp_path, kind):
    path = convertible(tmp_path, kind)
    result = predict(path, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    overlay = cv2.imread(str(tmp_path / "out" / f"{kind}.jpg"), cv2.IMREAD_UNCHANGED)
    assert overlay.shape == (422, 640, 3)
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(results) == 2     # both people the marker network shows were found


def test_a_folder_with_broken_files_still_processes_the_good_ones(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    broken = [make_broken(photos, kind) for kind in BROKEN if kind != "missing"]
    good = [photos / "good.jpg", convertible(photos, "grayscale")]
    good[0].write_bytes(SAMPLE_PHOTO.read_bytes())
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "out"
    result = predict(photos, missing, "--out", out)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    for path, problem in broken + [(missing, "no such file")]:
        named = [line for line in errors if line.startswith(f"error: {path}: ")]
        assert len(named) == 1 and problem in named[0]
    assert len(errors) == len(broken) + 1
    assert "5 input(s) failed" in result.stderr
    for path in good:
        assert cv2.imread(str(out / "photos" / (path.stem + ".jpg"))) is not None
    meta = json.loads((out / "predictions.meta.json").read_text())
    assert sorted(m["file"] for m in meta["images"]) == sorted(str(p) for p in good)
    results = json.loads((out / "predictions.json").read_text())
    assert sorted(r["image_id"] for r in results) == [0, 0, 1, 1]
    # atomic writes leave no temporary files behind, even for the failed video
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    assert not (out / "photos" / "broken.mp4").exists()


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = predict(tmp_path / "empty")
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'empty'}: folder contains no image or video files" in result.stderr


def test_sources_skip_hidden_and_unrelated_files_in_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.jpg", "a.PNG", "sub/c.mp4", "sub/b.png", "notes.txt", ".hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    sources, errors = expand_inputs([tmp_path, tmp_path / "b.jpg", tmp_path / "sub" / "b.png"])
    assert not errors
    # outputs are named after these; the second "b" would overwrite the first's overlay
    folder = tmp_path.name
    assert [str(s.name) for s in sources] == [f"{folder}/a.PNG", f"{folder}/b.jpg", f"{folder}/sub/b.png",
                                              f"{folder}/sub/c.mp4", "b.jpg", "b_2.png"]
    assert [s.is_video for s in sources] == [False, False, False, True, False, False]


def test_video_reader_reads_frames_and_rejects_broken_files(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path)
    reader = VideoReader(path)
    assert reader.size == (640, 422) and reader.frame_count == 3
    assert [(index, frame.shape) for index, frame in reader] == [(i, (422, 640, 3)) for i in range(3)]
    broken, problem = make_broken(tmp_path, "unreadable video")
    with pytest.raises(InputError, match=problem):
        VideoReader(broken)
    with pytest.raises(InputError, match="no such file"):
        VideoReader(tmp_path / "nowhere.mp4")
