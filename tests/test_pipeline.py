"""``ftpose predict`` on videos, cameras and streams: thresholds, tracked outputs in the
formats users' tools read, results that survive a kill, reruns that skip finished work."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import marker_network  # noqa: F401  (registers the test-marker model)
from crossing_clip import crossing_clip, write_video

from ftpose.cli import main
from ftpose.files import SAMPLE_PHOTO
from ftpose.sources import parse_live_source

ROOT = Path(__file__).resolve().parents[1]

# OpenPose's COCO body parts in the order of its doc/02_output.md (POSE_COCO_BODY_PARTS),
# written out here rather than taken from ftpose, so that the reader below is independent.
OPENPOSE_COCO_PARTS = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip",
                       "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar")
COCO_NAME = {"Nose": "nose", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear",
             "RShoulder": "right_shoulder", "LShoulder": "left_shoulder", "RElbow": "right_elbow",
             "LElbow": "left_elbow", "RWrist": "right_wrist", "LWrist": "left_wrist", "RHip": "right_hip",
             "LHip": "left_hip", "RKnee": "right_knee", "LKnee": "left_knee", "RAnkle": "right_ankle",
             "LAnkle": "left_ankle"}
COCO17_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                "right_knee", "left_ankle", "right_ankle")


def predict(*args, **kwargs):
    return CliRunner().invoke(main, ["predict", *map(str, args)], **kwargs)


def read_openpose_folder(folder: Path) -> dict:
    """``{(video, frame): [(person_id, {part: (x, y, c)})]}`` from OpenPose ``--write_json`` files:
    ``NAME_{frame:012d}_keypoints.json``, ``people[].pose_keypoints_2d`` = x, y, c per part."""
    out = {}
    for path in sorted(folder.glob("*_keypoints.json")):
        stem = path.name[: -len("_keypoints.json")]
        video, frame = stem.rsplit("_", 1)
        assert len(frame) == 12 and frame.isdigit()
        data = json.loads(path.read_text())
        assert isinstance(data["version"], float)
        people = []
        for person in data["people"]:
            values = person["pose_keypoints_2d"]
            assert len(values) == 3 * len(OPENPOSE_COCO_PARTS)
            parts = {name: tuple(values[3 * i: 3 * i + 3]) for i, name in enumerate(OPENPOSE_COCO_PARTS)}
            people.append((person["person_id"][0], parts))
        out[(video, int(frame))] = people
    return out


@pytest.fixture(scope="module")
def clip_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "crossing.mp4"
    return write_video(crossing_clip(frames=12), path)


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, clip_video) -> Path:
    """The crossing clip through ftnet-light with tracking and every output."""
    out = tmp_path_factory.mktemp("tracked")
    result = predict(clip_video, "--model", "ftnet-light", "--threads", "1", "--track", "--out", out,
                     "--csv", out / "joints.csv", "--openpose-json", out / "openpose",
                     "--posetrack-json", out / "posetrack")
    assert result.exit_code == 0, result.output
    return out


def test_default_thresholds_leave_the_sample_photos_four_people():
    """The sample photo shows 4 people; without thresholds the decoder adds low-score fragments."""
    import torch

    from ftpose.pipeline import DEFAULT_MIN_JOINTS, DEFAULT_MIN_SCORE
    from ftpose.predictor import Predictor
    from ftpose.files import read_image

    torch.set_num_threads(1)
    people = Predictor("ftnet-light").predict(read_image(SAMPLE_PHOTO))
    assert len(people) > 4
    assert len(people.filtered(DEFAULT_MIN_SCORE, DEFAULT_MIN_JOINTS)) == 4


def test_tracked_video_outputs_agree_and_carry_ids(tracked_run, clip_video):
    results = json.loads((tracked_run / "predictions.json").read_text())
    assert {r["frame"] for r in results} == set(range(12))
    assert all(isinstance(r["track_id"], int) for r in results)
    for frame in range(12):   # ids are unique within a frame
        ids = [r["track_id"] for r in results if r["frame"] == frame]
        assert len(ids) == len(set(ids))

    # OpenPose JSON, read as OpenPose documents it, holds the same people and ids
    openpose = read_openpose_folder(tracked_run / "openpose")
    assert sorted(openpose) == [("crossing", f) for f in range(12)]
    for record in results:
        people = dict(openpose[("crossing", record["frame"])])
        parts = people[record["track_id"]]
        coco = np.array(record["keypoints"]).reshape(17, 3)
        for name, (x, y, c) in parts.items():
            if name == "Neck":
                continue
            k = COCO17_NAMES.index(COCO_NAME[name])
            if c > 0:
                assert (x, y) == pytest.approx(tuple(coco[k, :2]), abs=0.01)
            else:
                assert (x, y, c) == (0, 0, 0) and coco[k, 2] == 0

    # the long CSV: one row per found joint of every person
    import csv

    with open(tracked_run / "joints.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["video", "frame", "time", "track", "person", "keypoint", "x", "y", "confidence"]
    found = sum(int((np.array(r["keypoints"]).reshape(17, 3)[:, 2] > 0).sum()) for r in results)
    necks = sum(row["keypoint"] == "neck" for row in rows)
    assert len(rows) - necks == found
    assert {row["video"] for row in rows} == {str(clip_video)}
    assert float(rows[-1]["time"]) == pytest.approx(int(rows[-1]["frame"]) / 10.0, abs=1e-3)

    # the overlay is H.264, the codec browsers play
    import av

    with av.open(str(tracked_run / "crossing.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 12


def test_posetrack_results_are_scored_for_mota(tracked_run, tmp_path):
    """The PoseTrack writer's files are what ``ftpose eval --dataset posetrack`` reads."""
    files = list((tracked_run / "posetrack").glob("*.json"))
    assert [f.name for f in files] == ["crossing.json"]
    data = json.loads(files[0].read_text())
    assert len(data["images"]) == 12 and all("track_id" in a for a in data["annotations"])
    # ground truth: the same file with its people as annotations scores perfectly
    truth = {"images": data["images"], "categories": data["categories"],
             "annotations": [{**a, "bbox_head": [0, 0, 40, 40], "id": i} for i, a in enumerate(data["annotations"])]}
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "crossing.json").write_text(json.dumps(truth))
    result = CliRunner().invoke(main, ["eval", "--dataset", "posetrack", "--ann", str(tmp_path / "gt"),
                                       "--results", str(tracked_run / "posetrack"), "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["MOTA"] == pytest.approx(1.0) and metrics["mAP"] == pytest.approx(1.0)


def test_live_source_arguments_parse(tmp_path, monkeypatch):
    camera = parse_live_source("0")
    assert (camera.kind, camera.location, str(camera.name), camera.label) == ("camera", "0", "camera0.mp4", "camera 0")
    stream = parse_live_source("rtsp://192.168.1.5:554/live/cam1?user=x")
    assert (stream.kind, stream.location, str(stream.name)) == ("url", "rtsp://192.168.1.5:554/live/cam1?user=x",
                                                                "cam1.mp4")
    assert parse_live_source("https://example.org/")
    assert parse_live_source("-").kind == "stdin"
    assert parse_live_source("photo.jpg") is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "0").write_bytes(SAMPLE_PHOTO.read_bytes())
    assert parse_live_source("0") is None       # a file called 0 is a file


class FakeCapture:
    """Stands in for ``cv2.VideoCapture``: a camera (or stream) showing the crossing clip."""

    opened: list = []
    frames = crossing_clip(frames=12).frames[:6]

    def __init__(self, where):
        FakeCapture.opened.append(where)
        self.index = 0

    def isOpened(self):
        return self.opened[-1] in (0, "rtsp://cam.example/live")

    def grab(self):
        self.index += 1
        return self.index <= len(self.frames)

    def retrieve(self):
        return True, self.frames[self.index - 1].copy()

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 422}.get(prop, 0.0)

    def release(self):
        pass


def test_camera_and_stream_are_opened_and_read(tmp_path, monkeypatch):
    import ftpose.sources

    monkeypatch.setattr(ftpose.sources.cv2, "VideoCapture", FakeCapture)
    FakeCapture.opened = []
    result = predict("0", "--model", "test-marker", "--max-frames", 4, "--track", "--json", tmp_path / "r.json",
                     "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert FakeCapture.opened == [0]
    results = json.loads((tmp_path / "r.json").read_text())
    assert sorted({r["frame"] for r in results}) == [0, 1, 2, 3]
    assert sorted({r["track_id"] for r in results}) == [0, 1]
    import av

    with av.open(str(tmp_path / "out" / "camera0.mp4")) as container:   # cv2.VideoCapture is the fake here
        assert sum(1 for _ in container.decode(video=0)) == 4

    result = predict("rtsp://cam.example/live", "--model", "test-marker", "--frame-step", 2)
    assert result.exit_code == 0, result.output
    assert FakeCapture.opened[-1] == "rtsp://cam.example/live"
    assert result.stdout.splitlines() == [f"rtsp://cam.example/live frame {f}: 2 people" for f in (0, 2, 4)]

    result = predict("5", "--model", "test-marker")
    assert result.exit_code == 1
    assert "camera 5: cannot open this camera" in result.stderr


def test_an_image_on_standard_input():
    result = predict("-", "--model", "test-marker", input=SAMPLE_PHOTO.read_bytes())
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "-: 2 people"


def test_a_folder_says_what_it_holds_and_videos_can_be_left_out(tmp_path, clip_video):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(SAMPLE_PHOTO, folder / "a.jpg")
    shutil.copy(clip_video, folder / "b.mp4")
    result = predict(folder, "--model", "test-marker", "--no-folder-videos", "--max-frames", 2)
    assert result.exit_code == 0, result.output
    assert f"{folder}: 1 image(s), 1 video(s) (videos left out; --folder-videos includes them)" in result.stderr
    assert result.stdout.splitlines() == [f"{folder / 'a.jpg'}: 2 people"]
    result = predict(folder, "--model", "test-marker", "--max-frames", 2)
    assert f"{folder}: 1 image(s), 1 video(s)\n" in result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_finished_videos_are_skipped_on_a_rerun(tmp_path, clip_video):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("one.mp4", "two.mp4"):
        shutil.copy(clip_video, folder / name)
    args = (folder, "--model", "test-marker", "--max-frames", 3, "--track", "--json", tmp_path / "r.json")
    result = predict(*args)
    assert result.exit_code == 0, result.output
    first = (tmp_path / "r.json").read_text()
    assert len(json.loads(first)) == 2 * 3 * 2
    manifest = json.loads((tmp_path / "r.manifest.json").read_text())
    assert sorted(manifest["done"]) == [str(folder / "one.mp4"), str(folder / "two.mp4")]

    result = predict(*args)
    assert "0 image(s)" in result.stderr and "2 input(s) finished by an earlier run, skipped" in result.stderr
    assert (tmp_path / "r.json").read_text() == first

    # a changed video is done again, the other one still skipped
    write_video(crossing_clip(frames=4), folder / "two.mp4")
    result = predict(*args)
    assert "3 image(s)" in result.stderr and "1 input(s) finished by an earlier run" in result.stderr
    assert (tmp_path / "r.json").read_text() == first     # same marker people, same frames
    # other settings: nothing is skipped
    result = predict(*args[:-2], "--max-people", 1, "--json", tmp_path / "r.json")
    assert "6 image(s)" in result.stderr and "skipped" not in result.stderr


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A command that takes a while: 200 frames through a tiny random network."""
    from ftpose.models import create_model, save_weights

    folder = tmp_path_factory.mktemp("long")
    weights = folder / "tiny.safetensors"
    save_weights(create_model("ftnet", width_mult=0.125), weights)
    video = write_video(crossing_clip(frames=200, travel=0.5), folder / "long.mp4")
    return video, [sys.executable, "-m", "ftpose", "predict", str(video), "--weights", str(weights), "--threads", "1",
                   "--batch-size", "1", "--min-score", "0", "--min-joints", "0"]


def start_and_stop(command, journal: Path, signal_number: int) -> subprocess.Popen:
    """Run ``command``, send it ``signal_number`` once its journal has 5 frames, wait for it."""
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 5:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal_number)
    process.wait(timeout=60)
    return process


def test_a_killed_run_keeps_its_per_frame_results(tmp_path, long_run):
    """kill -9 in the middle of a video: every frame written so far is in the journal and
    has its OpenPose file."""
    video, command = long_run
    journal = tmp_path / "r.jsonl"
    start_and_stop(command + ["--json", str(tmp_path / "r.json"), "--openpose-json", str(tmp_path / "openpose")],
                   journal, signal.SIGKILL)
    lines = journal.read_text().splitlines(keepends=True)
    complete = [json.loads(line) for line in lines if line.endswith("\n")]
    assert len(complete) >= 5
    assert [r["frame"] for r in complete] == list(range(len(complete)))
    assert all(r["file"] == str(video) for r in complete)
    for record in complete:
        assert (tmp_path / "openpose" / f"long_{record['frame']:012d}_keypoints.json").is_file()
    assert not (tmp_path / "r.json").exists()


def test_sigterm_ends_the_run_with_its_final_files(tmp_path, long_run):
    video, command = long_run
    process = start_and_stop(command + ["--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")],
                             tmp_path / "r.jsonl", signal.SIGTERM)
    assert process.returncode == 130
    assert "interrupted: the results so far are in" in process.stderr.read()
    done = (tmp_path / "r.jsonl").read_text().count("\n")
    meta = json.loads((tmp_path / "r.meta.json").read_text())
    assert [m["frame"] for m in meta["images"]] == list(range(done))
    assert (tmp_path / "r.csv").read_text().startswith("video,frame,time,track")


def test_offline_smoothing_replays_the_video_into_every_output(tmp_path, clip_video):
    out = tmp_path / "out"
    result = predict(clip_video, "--model", "test-marker", "--smooth-offline", "--out", out,
                     "--openpose-json", tmp_path / "openpose")
    assert result.exit_code == 0, result.output
    results = json.loads((out / "predictions.json").read_text())
    assert sorted((r["frame"], r["track_id"]) for r in results) == [(f, t) for f in range(12) for t in (0, 1)]
    assert len(read_openpose_folder(tmp_path / "openpose")) == 12
    import av

    with av.open(str(out / "crossing.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12
    # the marker network's people stand still: smoothing leaves them where they are
    plain = tmp_path / "plain.json"
    assert predict(clip_video, "--model", "test-marker", "--track", "--json", plain).exit_code == 0
    expected = {(r["frame"], r["track_id"]): r["keypoints"] for r in json.loads(plain.read_text())}
    for record in results:
        np.testing.assert_allclose(record["keypoints"], expected[(record["frame"], record["track_id"])], atol=0.02)
    assert predict(clip_video, "--model", "test-marker", "--smooth").exit_code == 0


def test_offline_smoothing_needs_recorded_video():
    result = predict("0", "--smooth-offline")
    assert result.exit_code == 2 and "--smooth-offline needs recorded video" in result.stderr
