"""Where a run's results go: the journal, and the files users' tools read.

Results are never held back: :class:`Journal` appends one JSON line per processed
frame and flushes it, so a run stopped by Ctrl-C, SIGTERM or ``kill -9`` keeps every
frame done so far.  :class:`Manifest` records each finished sequence (a video, a
folder of frames, an image), so a rerun with the same settings skips it and keeps its
journal lines.  The aggregate files (:func:`write_coco_results`, :func:`write_csv`,
:func:`write_posetrack`) are built from the journal at the end of the run and written
atomically; they stream it from disk, so their memory does not grow with the video.

Per-frame outputs are written as frames come (each file atomically): overlays
(:class:`OverlayWriter`; videos through :class:`ftpose.video.VideoWriter`), merged
maps (:class:`MapsWriter`) and OpenPose JSON (:class:`OpenPoseJsonWriter`).

Journal line: ``{"file", "name", "sequence", "frame", "time", "height", "width",
"people": [{"keypoints": [x, y, c] * 18 (network layout), "score", "track_id"}]}``;
``frame``/``time`` are null for a lone image, ``track_id`` is null when untracked.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ftpose.files import VIDEO_SUFFIXES, InputError, atomic_write, write_image, write_json
from ftpose.grouping import People
from ftpose.keypoints import COCO17, NETWORK, NUM_PARTS
from ftpose.outputs import Outputs, meta_path
from ftpose.pipeline import FrameResult, Sequence, Sink
from ftpose.sources import Source

OPENPOSE_JSON_VERSION = 1.3
MANIFEST_INTERVAL = 2.0
CSV_COLUMNS = ("video", "frame", "time", "track", "person", "keypoint", "x", "y", "confidence")


# --- the journal and the manifest ---------------------------------------------------

def frame_record(result: FrameResult) -> dict:
    """The journal line of one frame (see the module docstring)."""
    people = result.people
    tracks = [None] * len(people) if people.track_ids is None else [int(t) for t in people.track_ids]
    return {"file": result.source.label, "name": str(result.source.name), "sequence": result.sequence.name,
            "frame": result.frame, "time": None if result.time is None else round(result.time, 4),
            "height": int(result.image.shape[0]), "width": int(result.image.shape[1]),
            "people": [{"keypoints": [round(float(v), 2) for v in kp.ravel()], "score": round(float(score), 5),
                        "track_id": track}
                       for kp, score, track in zip(people.keypoints, people.scores, tracks)]}


def record_people(record: dict) -> People:
    """The :class:`People` of a journal line."""
    people = record["people"]
    if not people:
        return People.empty()
    keypoints = np.array([p["keypoints"] for p in people], np.float32).reshape(-1, NUM_PARTS, 3)
    tracks = [p.get("track_id") for p in people]
    return People(keypoints, np.array([p["score"] for p in people], np.float32),
                  None if any(t is None for t in tracks) else np.array(tracks, np.int64))


class Journal(Sink):
    """Appends a flushed JSON line per frame to ``path``.

    ``keep`` is the set of source labels whose lines a previous run left and that this
    run skips; every other line of an existing journal is dropped, when the first
    frame comes (a run that processes nothing leaves the journal as it was).
    """

    def __init__(self, path, keep: set[str] = frozenset()):
        self.path = Path(path)
        self.keep = set(keep)
        self._file = None

    def frame(self, result: FrameResult) -> None:
        if self._file is None:
            kept = [line for line in _lines(self.path) if json.loads(line)["file"] in self.keep]
            with atomic_write(self.path, "w") as f:
                f.writelines(kept)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(frame_record(result), separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


def _lines(path: Path) -> Iterator[str]:
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n"):        # a line cut by a kill is not a result
                yield line


def read_journal(path, order: list[str] | None = None) -> Iterator[dict]:
    """The journal's frames sorted by their source's position in ``order`` (labels),
    then by frame; lines of sources not in ``order`` are left out.  Reads the file
    twice rather than holding it: first the sort keys, then each line in turn."""
    path = Path(path)
    position = None if order is None else {label: i for i, label in enumerate(order)}
    keys = []
    with open(path, "rb") as f:
        offset = 0
        for number, line in enumerate(f):
            if line.endswith(b"\n"):
                record = json.loads(line)
                rank = 0 if position is None else position.get(record["file"])
                if rank is not None:
                    keys.append((rank, record["frame"] if record["frame"] is not None else -1, number, offset))
            offset += len(line)
        keys.sort()
        for *_, at in keys:
            f.seek(at)
            yield json.loads(f.readline())


class Manifest(Sink):
    """``{"settings": ..., "done": {label: {"frames", "people", "size", "mtime_ns"}}}`` at ``path``.

    Rewritten (atomically) when a video finishes, after other sequences at most every
    ``MANIFEST_INTERVAL`` seconds (a folder of 10,000 photos would otherwise rewrite a
    growing file 10,000 times), and when the run ends.  Entries from an earlier run
    with the same ``settings`` whose file is unchanged (size, modification time) are
    :meth:`finished`: the run may skip them.  Live sources are never finished.
    """

    def __init__(self, path, settings: dict):
        from ftpose.files import read_json

        self.path = Path(path)
        self.settings = settings
        self.done: dict[str, dict] = {}
        if self.path.is_file():
            with contextlib.suppress(InputError):
                previous = read_json(self.path)
                if isinstance(previous, dict) and previous.get("settings") == settings:
                    self.done = dict(previous.get("done") or {})
        self._counts: dict[str, list[int]] = {}
        self._written, self._dirty = time.monotonic(), False

    def finished(self, source: Source) -> bool:
        entry = self.done.get(source.label)
        if entry is None or source.kind != "file" or not source.path.is_file():
            return False
        return (entry.get("size"), entry.get("mtime_ns")) == _fingerprint(source)

    def frame(self, result: FrameResult) -> None:
        counts = self._counts.setdefault(result.source.label, [0, 0])
        counts[0] += 1
        counts[1] += len(result.people)

    def end(self, sequence: Sequence, complete: bool) -> None:
        if not complete or any(source.kind != "file" for source in sequence.sources):
            return
        for source in sequence.sources:
            frames, people = self._counts.pop(source.label, (0, 0))
            size, mtime = _fingerprint(source)
            self.done[source.label] = {"frames": frames, "people": people, "size": size, "mtime_ns": mtime}
        self._dirty = True
        if sequence.is_video or time.monotonic() - self._written > MANIFEST_INTERVAL:
            self._write()

    def close(self) -> None:
        if self._dirty:
            self._write()

    def _write(self) -> None:
        write_json(self.path, {"settings": self.settings, "done": self.done}, indent=1)
        self._written, self._dirty = time.monotonic(), False


def _fingerprint(source: Source) -> tuple[int, int]:
    stat = source.path.stat()
    return stat.st_size, stat.st_mtime_ns


# --- aggregate files, built from the journal ------------------------------------------

def write_coco_results(journal, path, order: list[str], meta: dict, image_ids: dict | None = None) -> dict:
    """COCO keypoint results (``path``) and their ``.meta.json`` from the journal.

    ``image_id`` is ``image_ids[file]`` when given (COCO-numbered photos), else the
    frame's position in the run.  Video frames' records carry ``frame``, tracked
    people's ``track_id``.  Returns ``{"images": frames, "people": people}``.
    """
    path = Path(path)
    images, frames, people = [], 0, 0
    digest = hashlib.sha256()
    with atomic_write(path, "w") as file:
        def write(text: str) -> None:
            file.write(text)
            digest.update(text.encode())

        write("[")
        first = True
        for position, record in enumerate(read_journal(journal, order)):
            image_id = image_ids[record["file"]] if image_ids is not None else position
            info = {"image_id": image_id, "file": record["file"], "height": record["height"], "width": record["width"]}
            found = record_people(record)
            for result in found.coco_results(image_id):
                if record["frame"] is not None:
                    result["frame"] = record["frame"]
                write(("" if first else ",") + json.dumps(result))
                first = False
            if record["frame"] is not None:
                info["frame"] = record["frame"]
                if record["time"] is not None:
                    info["time"] = record["time"]
            images.append(info)
            frames += 1
            people += len(found)
        write("]")
    # one pair: the meta names the hash of the results it belongs to
    write_json(meta_path(path), {**meta, "results": path.name, "results_sha256": digest.hexdigest(),
                                 "images": images}, indent=1)
    return {"images": frames, "people": people}


def write_csv(journal, path, order: list[str]) -> None:
    """One row per found joint: ``video, frame, time, track, person, keypoint, x, y, confidence``
    (``track`` empty when untracked; ``person`` is the index within the frame)."""
    with atomic_write(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for record in read_journal(journal, order):
            for person, found in enumerate(record["people"]):
                keypoints = np.asarray(found["keypoints"]).reshape(NUM_PARTS, 3)
                track = "" if found["track_id"] is None else found["track_id"]
                for k in np.flatnonzero(keypoints[:, 2] > 0):
                    x, y, c = keypoints[k]
                    writer.writerow((record["file"], "" if record["frame"] is None else record["frame"],
                                     "" if record["time"] is None else record["time"], track, person,
                                     NETWORK.keypoints[k], f"{x:.2f}", f"{y:.2f}", f"{c:.4f}"))


def write_posetrack(journal, folder, order: list[str]) -> list[Path]:
    """PoseTrack 2018-format results, one file per sequence in ``folder``, that
    ``ftpose eval --dataset posetrack --results FOLDER`` scores.

    Images are named by the frame's path relative to the input argument (the
    annotations' ``file_name`` when the argument is PoseTrack's ``images`` folder;
    ``VIDEO/FRAME.jpg`` for a video); keypoints are in COCO-17 (declared in
    ``categories``) with per-joint ``scores`` and the ``track_id``.
    """
    folder = Path(folder)
    written, current, data = [], None, None

    def flush():
        if data is not None:
            target = folder / (current.replace("/", "_").replace("\\", "_") + ".json")
            write_json(target, data)
            written.append(target)

    for record in read_journal(journal, order):
        if record["sequence"] != current:
            flush()
            current = record["sequence"]
            data = {"images": [], "annotations": [],
                    "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoints)}]}
        image_id = len(data["images"])
        if record["frame"] is not None and Path(record["name"]).suffix.lower() in VIDEO_SUFFIXES:
            file_name = f"{Path(record['name']).with_suffix('')}/{record['frame']:06d}.jpg"
        else:
            file_name = record["name"]
        data["images"].append({"id": image_id, "file_name": file_name, "frame_id": record["frame"] or 0})
        people = record_people(record)
        for keypoints, score, track in zip(people.to_coco17(), people.scores,
                                           people.track_ids if people.track_ids is not None else [None] * len(people)):
            annotation = {"image_id": image_id, "category_id": 1, "score": float(score),
                          "keypoints": [round(float(v), 2) for v in keypoints.ravel()],
                          "scores": [round(float(v), 4) for v in keypoints[:, 2]]}
            if track is not None:
                annotation["track_id"] = int(track)
            data["annotations"].append(annotation)
    flush()
    return written


# --- per-frame outputs --------------------------------------------------------------

class OpenPoseJsonWriter(Sink):
    """OpenPose's per-frame JSON in ``folder``: ``NAME_000000000123_keypoints.json`` for
    frame 123 of a video (or of a folder sequence), ``NAME_keypoints.json`` for an image.

    The format of OpenPose's ``--write_json`` (doc/02_output.md): ``{"version": 1.3,
    "people": [{"person_id": [id], "pose_keypoints_2d": [x, y, c] * 18, ...}]}`` in its
    COCO-18 order (the network's own), ``0, 0, 0`` for a joint not found, ``person_id``
    the track id or -1 when untracked, and the face, hand and 3-D arrays empty.
    """

    def __init__(self, outputs: Outputs):
        self.outputs = outputs

    def frame(self, result: FrameResult) -> None:
        write_json(self.path(result), openpose_frame(result.people))

    def path(self, result: FrameResult) -> Path:
        frame = f"_{result.frame:012d}" if result.source.is_video else ""
        name = Path(result.source.name)
        return self.outputs.path(result.source, ".json").with_name(f"{name.stem}{frame}_keypoints.json")


def openpose_frame(people: People) -> dict:
    """One frame's people as an OpenPose JSON object (see :class:`OpenPoseJsonWriter`)."""
    tracks = [-1] * len(people) if people.track_ids is None else [int(t) for t in people.track_ids]
    empty = ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d", "pose_keypoints_3d",
             "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")
    return {"version": OPENPOSE_JSON_VERSION,
            "people": [{"person_id": [track],
                        "pose_keypoints_2d": [round(float(v), 3) for v in kp.ravel()],
                        **{key: [] for key in empty}}
                       for kp, track in zip(people.to_openpose18(), tracks)]}


class OverlayWriter(Sink):
    """Overlays in ``out``: ``NAME.jpg`` per image, ``NAME.mp4`` (H.264; or ``.webm``,
    VP9, with ``video_suffix``) per video or camera, each track in its colour with its id.
    ``banner`` (e.g. the untrained-network warning) is stamped on every overlay."""

    def __init__(self, outputs: Outputs, banner: str | None = None, video_suffix: str = ".mp4"):
        self.outputs = outputs
        self.banner = banner
        self.video_suffix = video_suffix
        self._video = None

    def start(self, sequence: Sequence) -> None:
        if sequence.is_video:
            from ftpose.video import VideoWriter

            self._video = VideoWriter(self.outputs.path(sequence.sources[0], self.video_suffix),
                                      sequence.fps or 25.0)

    def frame(self, result: FrameResult) -> None:
        from ftpose.visualize import draw_banner, draw_people

        canvas = draw_people(result.image, result.people)
        if self.banner:
            canvas = draw_banner(canvas, self.banner)
        if self._video is not None:
            self._video.write(canvas)
        else:
            write_image(self.outputs.path(result.source, ".jpg"), canvas)

    def end(self, sequence: Sequence, complete: bool) -> None:
        video, self._video = self._video, None
        if video is not None:
            video.close(keep=True)   # also when incomplete: it shows every frame that was read

    def close(self) -> None:
        """An interrupted run: the video so far is kept, as the journal keeps its results."""
        self.end(None, False)


class MapsWriter(Sink):
    """The merged heatmaps and PAFs, float16 ``.npz`` (``heatmaps``, ``pafs``, ``cell_size``):
    ``OUT/NAME.maps.npz`` per image, ``OUT/NAME.maps/FRAME.npz`` per video frame."""

    def __init__(self, outputs: Outputs):
        self.outputs = outputs

    def frame(self, result: FrameResult) -> None:
        maps = result.maps
        if result.source.is_video:
            path = self.outputs.path(result.source, ".maps") / f"{result.frame:06d}.npz"
        else:
            path = self.outputs.path(result.source, ".maps.npz")
        with atomic_write(path) as f:
            np.savez_compressed(f, heatmaps=maps.heatmaps.astype(np.float16), pafs=maps.pafs.astype(np.float16),
                                cell_size=np.array(maps.cell_size))


class MapPanelsWriter(Sink):
    """The merged maps drawn over each image (``ftpose.mapview.map_panels``):
    ``OUT/NAME.heatmaps.png``, ``.parts.png``, ``.pafs.png``; images only."""

    def __init__(self, outputs: Outputs, banner: str | None = None):
        self.outputs = outputs
        self.banner = banner

    def frame(self, result: FrameResult) -> None:
        from ftpose.mapview import map_panels
        from ftpose.visualize import draw_banner

        if result.source.is_video:
            return
        for name, panel in map_panels(result.image, result.maps).items():
            if self.banner:
                draw_banner(panel, self.banner)
            write_image(self.outputs.path(result.source, f".{name}.png"), panel)


class Echo(Sink):
    """``SOURCE: N people`` (``SOURCE frame F: N people``) on standard output, for runs
    that write no files."""

    def __init__(self, write=None):
        self.write = write or (lambda text: print(text, file=sys.stdout))

    def frame(self, result: FrameResult) -> None:
        where = result.source.label if result.frame is None else f"{result.source.label} frame {result.frame}"
        self.write(f"{where}: {len(result.people)} people")
