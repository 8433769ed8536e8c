"""PoseTrack 2017/2018 evaluation: per-part AP (the paper's Table 4) and MOT metrics.

Both annotation formats are read: 2018 (COCO-like ``images``/``annotations`` with
``bbox_head``, ``track_id`` and ``ignore_regions_x/y`` per image) and 2017 (``annolist``
with head boxes ``x1 y1 x2 y2`` and ``annopoints``).  Either may be one file or a folder
of per-sequence files.  Scoring follows poseval, PoseTrack's evaluation tool:

- only frames with annotated people are evaluated (predictions elsewhere are ignored);
- joints inside an image's ignore regions are removed from both the ground truth and
  the predictions (strictly inside the polygon; points on its edge stay);
- per-part AP uses PCKh@0.5 matching with the head size 0.6 x head box diagonal
  (:mod:`ftpose.evaluation.pckh`), on the 15 PoseTrack joints; Head averages head bottom,
  nose and head top; mAP averages the joints;
- with predicted track ids, per-joint CLEAR MOT over each sequence
  (:mod:`ftpose.evaluation.clear_mot`), averaged over the joints.

poseval differs from this in three places where its behaviour is a defect, not the
protocol: its tracking evaluation skips the last frame of every sequence; a frame with
no predictions counts one phantom miss and one phantom false positive per joint instead
of its real misses; and with py-motmetrics >= 1.2 its MOTP also adds the distances of
every candidate pair, not only of matched pairs.  See the README for the cross-check.

Predictions for networks in the COCO-17 or OpenPose-18 layout have neither head bottom
nor head top: those joints are not applicable (None) and are left out of Head and mAP.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ftpose.data.posetrack import keypoint_triples, read_annolist_2017, read_images_2018
from ftpose.evaluation import malformed_as_input_error
from ftpose.evaluation.clear_mot import MotAccumulator, MotCounts
from ftpose.evaluation.pckh import (  # noqa: F401  (HEAD_BOX_FACTOR: read through this module by tests)
    BODY_COLUMNS, HEAD_BOX_FACTOR, PCKH_THRESHOLD, Frame, expressible, group_means, head_size_from_box,
    joint_average_precisions, match_frame, protocol_joints,
)
from ftpose.files import InputError, read_json
from ftpose.keypoints import COCO17, POSETRACK17, POSETRACK18, KeypointSet

JOINTS = POSETRACK17.keypoints  # poseval's 15 joints, in its order
COLUMNS = {"Head": ("head_bottom", "nose", "head_top"), **BODY_COLUMNS}


@dataclass
class GroundTruthFrame:
    """One annotated frame: people as ``keypoints (G, 15, 3)`` in POSETRACK17 order."""

    image: str
    image_id: int | None
    keypoints: np.ndarray
    head_size: np.ndarray
    track_ids: np.ndarray
    ignore_regions: list[np.ndarray] = field(default_factory=list)


@dataclass
class Sequence:
    name: str
    frames: list[GroundTruthFrame]


@dataclass
class PredictedPeople:
    """People predicted in one frame, in some layout; ``track_ids`` is None when untracked."""

    keypoints: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray | None = None


# --- ground truth ---------------------------------------------------------------------

def _json_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise InputError(path, "folder has no .json files")
        return files
    return [path]


def load_ground_truth(path) -> list[Sequence]:
    """PoseTrack sequences from one json file or a folder of them (2017 or 2018 format)."""
    sequences = []
    for file in _json_files(Path(path)):
        data = read_json(file)
        with malformed_as_input_error(file, "the annotation structure"):
            if isinstance(data, dict) and "annolist" in data:
                sequences.append(Sequence(file.stem, list(_frames_2017(data["annolist"], file))))
            elif isinstance(data, dict) and isinstance(data.get("images"), list) and "annotations" in data:
                sequences.extend(_sequences_2018(data, file))
            else:
                raise InputError(file, "not a PoseTrack file (neither 'annolist' nor 'images' and 'annotations')")
    sequences = [s for s in sequences if s.frames]
    if not sequences:
        raise InputError(path, "contains no annotated frames")
    return sequences


def _polygons(xs_list, ys_list, source, image) -> list[np.ndarray]:
    polygons = []
    for xs, ys in zip(xs_list or [], ys_list or []):
        if len(xs) != len(ys):
            raise InputError(source, f"image {image}: an ignore region has {len(xs)} x and {len(ys)} y values")
        if len(xs) >= 3:
            polygons.append(np.stack([np.asarray(xs, np.float32), np.asarray(ys, np.float32)], 1))
    return polygons


def _sequences_2018(data: dict, source: Path) -> list[Sequence]:
    layout = _layout_of(data, source)
    sequences: dict[str, Sequence] = {}
    for info, records in read_images_2018(data, source, layout):
        if not records:  # poseval evaluates annotated frames only
            continue
        keypoints, head_size, track_ids = [], [], []
        for ann, kp in records:
            if kp is None:
                raise InputError(source, f"annotation {ann.get('id')} has no 'keypoints'")
            labelled = kp[:, 2] > 0
            xy, present, _ = protocol_joints(np.where(labelled[:, None], kp, 0.0)[None], np.zeros((1, len(layout))),
                                             layout, POSETRACK17, JOINTS)
            xy, present = xy[0], present[0]
            keypoints.append(np.concatenate([xy, present[:, None]], 1))
            if "bbox_head" in ann and ann["bbox_head"] is not None:
                x, y, w, h = ann["bbox_head"]
                head_size.append(head_size_from_box((x, y, x + w, y + h)))
            elif present.any():
                raise InputError(source, f"annotation {ann.get('id')} has keypoints but no 'bbox_head'")
            else:
                head_size.append(np.nan)
            track_ids.append(int(ann.get("track_id", -1)))
        name = str(info.get("vid_id") or Path(info["file_name"]).parent.name or source.stem)
        frame = GroundTruthFrame(info["file_name"], info["id"], np.stack(keypoints), np.array(head_size),
                                 np.array(track_ids),
                                 _polygons(info.get("ignore_regions_x"), info.get("ignore_regions_y"),
                                           source, info["id"]))
        sequences.setdefault(name, Sequence(name, [])).frames.append(frame)
    return list(sequences.values())


def _frames_2017(annolist: list, source: Path):
    for frame in read_annolist_2017(annolist, source):
        if not frame.rects:
            continue
        keypoints, head_size = [], []
        for r, rect in enumerate(frame.rects):
            keypoints.append(np.concatenate([rect.joints[:, :2], (rect.joints[:, 2:] > 0).astype(float)], 1))
            if rect.head_box is not None:
                head_size.append(head_size_from_box(rect.head_box))
            elif rect.joints[:, 2].any():
                raise InputError(source, f"{frame.image}: annorect {r} has keypoints but no head box x1 y1 x2 y2")
            else:
                head_size.append(np.nan)
        yield GroundTruthFrame(frame.image, None, np.stack(keypoints), np.array(head_size),
                               np.array([rect.track_id for rect in frame.rects]),
                               _polygons(frame.ignore_xs, frame.ignore_ys, source, frame.image))


def _scalar(value):
    return value[0] if isinstance(value, list) else value


def _layout_of(data: dict, source: Path) -> KeypointSet:
    """The keypoint layout a 2018-format file declares (by joint names), POSETRACK18 if none."""
    categories = data.get("categories") or []
    names = categories[0].get("keypoints") if categories and isinstance(categories[0], dict) else None
    if not names:
        return POSETRACK18
    if not any(n in names for n in JOINTS):
        raise InputError(source, f"category keypoints {names[:3]}... name no PoseTrack joint")
    return KeypointSet(f"{source.name} keypoints", tuple(names), ())


# --- predictions ----------------------------------------------------------------------

def load_results(path, layout: KeypointSet | None = None) -> tuple[dict, KeypointSet]:
    """Predictions keyed by image id and by image file name, and their layout.

    Accepts the PoseTrack submission format (a 2018-format file or a folder of them, with
    per-joint ``scores`` and ``track_id``; 2017 ``annolist`` files too) or a list of COCO
    result records (``image_id``, ``keypoints``, ``score``, optional ``track_id`` and
    ``keypoint_scores``), taken as COCO-17 unless ``layout`` says otherwise.  A joint is
    ranked by its own score when given, else by its person's score.
    """
    path = Path(path)
    if not path.is_dir():
        data = read_json(path)
        if isinstance(data, list):
            with malformed_as_input_error(path, "a results record"):
                return _results_from_records(data, path, layout or COCO17), layout or COCO17
        files = [(path, data)]
    else:
        files = [(f, read_json(f)) for f in _json_files(path)]
    out: dict = {}
    result_layout = None
    for file, data in files:
        with malformed_as_input_error(file, "the results structure"):
            if isinstance(data, dict) and "annolist" in data:
                found, file_layout = _results_2017(data["annolist"], file), POSETRACK17
            elif isinstance(data, dict) and isinstance(data.get("images"), list) and "annotations" in data:
                file_layout = layout or _layout_of(data, file)
                found = _results_2018(data, file, file_layout)
            else:
                raise InputError(file, "not a PoseTrack results file")
        if result_layout is not None and file_layout.keypoints != result_layout.keypoints:
            raise InputError(file, "uses another keypoint layout than the other results files")
        result_layout = file_layout
        out.update(found)
    return out, result_layout or POSETRACK18


def _person_scores(record: dict, num_joints: int, source, what: str) -> np.ndarray:
    for key in ("scores", "keypoint_scores"):
        if record.get(key):
            scores = np.asarray(record[key], np.float64).ravel()
            if scores.size != num_joints:
                raise InputError(source, f"{what}: {scores.size} joint {key} for {num_joints} joints")
            return scores
    if "score" not in record:
        raise InputError(source, f"{what} has no joint 'scores' and no person 'score'")
    return np.full(num_joints, float(_scalar(record["score"])))


def _group(people: list, keys: list) -> dict:
    out = {}
    for key, person in zip(keys, people):
        out.setdefault(key, []).append(person)
    return {key: _stack(v) for key, v in out.items()}


def _stack(people) -> PredictedPeople:
    tracks = [t for _, _, t in people]
    return PredictedPeople(np.stack([k for k, _, _ in people]), np.stack([s for _, s, _ in people]),
                           None if any(t is None for t in tracks) else np.array(tracks))


def _results_from_records(records: list, source: Path, layout: KeypointSet) -> dict:
    people, keys = [], []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or "image_id" not in record or "keypoints" not in record:
            raise InputError(source, f"record {i} lacks 'image_id' or 'keypoints'")
        what = f"record {i} (image {record['image_id']})"
        kp = keypoint_triples(record["keypoints"], layout, source, what)
        track = record.get("track_id")
        people.append((kp, _person_scores(record, len(layout), source, what), None if track is None else int(track)))
        keys.append(record["image_id"])
    return _group(people, keys)


def _results_2018(data: dict, source: Path, layout: KeypointSet) -> dict:
    names = {info.get("id"): info.get("file_name") for info in data["images"]}
    people, keys = [], []
    for i, ann in enumerate(data["annotations"]):
        what = f"annotation {ann.get('id', i)}"
        if "image_id" not in ann or "keypoints" not in ann:
            raise InputError(source, f"{what} lacks 'image_id' or 'keypoints'")
        kp = keypoint_triples(ann["keypoints"], layout, source, what)
        track = ann.get("track_id")
        people.append((kp, _person_scores(ann, len(layout), source, what), None if track is None else int(track)))
        keys.append(ann["image_id"])
    out = _group(people, keys)
    out.update({names[k]: v for k, v in list(out.items()) if names.get(k)})
    return out


def _results_2017(annolist: list, source: Path) -> dict:
    people, keys = [], []
    for i, entry in enumerate(annolist):
        image = entry["image"][0]["name"] if isinstance(entry.get("image"), list) else entry.get("image", {}).get("name")
        for r, rect in enumerate(entry.get("annorect") or []):
            what = f"{image} annorect {r}"
            kp = np.zeros((len(JOINTS), 3))
            scores = np.zeros(len(JOINTS))
            annopoints = rect.get("annopoints") or []
            points = (annopoints[0] if isinstance(annopoints, list) else annopoints).get("point", []) \
                if annopoints else []
            fallback = _scalar(rect["score"]) if "score" in rect else None
            for p in points:
                k = int(_scalar(p["id"]))
                if not 0 <= k < len(JOINTS):
                    raise InputError(source, f"{what}: joint id {k} is not a PoseTrack 2017 joint (0..14)")
                kp[k] = (_scalar(p["x"]), _scalar(p["y"]), 1.0)
                if "score" in p:
                    scores[k] = _scalar(p["score"])
                elif fallback is not None:
                    scores[k] = fallback
                else:
                    raise InputError(source, f"{what}: joint {k} has no score and the person none either")
            track = rect.get("track_id")
            people.append((kp, scores, None if track is None else int(_scalar(track))))
            keys.append(image)
    return _group(people, keys)


# --- evaluation -----------------------------------------------------------------------

def _outside(points: np.ndarray, polygons: list[np.ndarray]) -> np.ndarray:
    """``(..., 2)`` points not strictly inside any polygon."""
    flat = points.reshape(-1, 2)
    inside = np.zeros(len(flat), bool)
    for polygon in polygons:
        for i, (x, y) in enumerate(flat):
            if not inside[i] and cv2.pointPolygonTest(polygon, (float(x), float(y)), False) > 0:
                inside[i] = True
    return ~inside.reshape(points.shape[:-1])


def make_frames(sequences: list[Sequence], predictions: dict, layout: KeypointSet) -> list[Frame]:
    """Protocol frames (ignore regions applied) of every annotated frame, in sequence order."""
    frames = []
    empty = PredictedPeople(np.zeros((0, len(layout), 3)), np.zeros((0, len(layout))), np.zeros(0, int))
    for sequence in sequences:
        for gt in sequence.frames:
            people = predictions.get(gt.image_id) if gt.image_id is not None else None
            people = people or predictions.get(gt.image) or empty
            xy, present, score = protocol_joints(people.keypoints, people.scores, layout, POSETRACK17, JOINTS)
            labelled = gt.keypoints[..., 2] > 0
            if gt.ignore_regions:
                labelled &= _outside(gt.keypoints[..., :2], gt.ignore_regions)
                present &= _outside(xy, gt.ignore_regions)
            tracks = people.track_ids
            if tracks is not None and len(set(tracks.tolist())) != len(tracks):
                raise InputError(gt.image, "predictions repeat a track id within the frame")
            frames.append(Frame(gt.keypoints[..., :2], labelled, gt.head_size, xy, present, score,
                                sequence=sequence.name, gt_track=gt.track_ids, pred_track=tracks))
    return frames


def tracking_counts(frames: list[Frame], threshold: float = PCKH_THRESHOLD) -> list[MotCounts]:
    """Per-joint CLEAR MOT counts summed over sequences (accumulators restart per sequence)."""
    num_joints = frames[0].num_joints
    totals = [MotCounts() for _ in range(num_joints)]
    accumulators, sequence = None, None
    for frame in frames:
        if frame.sequence != sequence or accumulators is None:
            if accumulators is not None:
                for total, acc in zip(totals, accumulators):
                    total += acc.counts
            accumulators, sequence = [MotAccumulator() for _ in range(num_joints)], frame.sequence
        match = match_frame(frame, threshold)
        for j, acc in enumerate(accumulators):
            g = np.flatnonzero(frame.gt_labelled[:, j])
            p = np.flatnonzero(frame.pred_present[:, j])
            within = match.within[np.ix_(p, g, [j])][..., 0].T
            distance = np.where(within, match.distance[np.ix_(p, g, [j])][..., 0].T, np.nan)
            acc.update(frame.gt_track[g], frame.pred_track[p], distance)
    for total, acc in zip(totals, accumulators or []):
        total += acc.counts
    return totals


def evaluate_posetrack(ground_truth, predictions: dict, layout: KeypointSet = POSETRACK18,
                       threshold: float = PCKH_THRESHOLD) -> dict[str, float | None]:
    """Table 4 metrics (fractions; MOTA may be negative): Head ... Ankle, mAP, ``AP/<joint>``,
    and, when every prediction has a track id, MOTA, MOTP, precision, recall, ``MOTA/<column>``
    and ``switches`` (identity switches summed over the scored joints, a count).

    ``ground_truth`` is a path or the list from :func:`load_ground_truth`; ``predictions``
    maps image ids or file names to :class:`PredictedPeople` (see :func:`load_results`).
    """
    if not isinstance(ground_truth, list):
        ground_truth = load_ground_truth(ground_truth)
    frames = make_frames(ground_truth, predictions, layout)
    scored = expressible(layout, JOINTS)
    aps = joint_average_precisions(frames, threshold)
    per_joint = {n: (None if not ok or np.isnan(ap) else float(ap)) for n, ap, ok in zip(JOINTS, aps, scored)}
    metrics = group_means(per_joint, COLUMNS)
    scored = [v for v in per_joint.values() if v is not None]
    metrics["mAP"] = float(np.mean(scored)) if scored else None
    metrics.update({f"AP/{n}": v for n, v in per_joint.items()})
    if all(f.pred_track is not None for f in frames) and any(len(f.pred) for f in frames):
        metrics.update(_tracking_metrics(tracking_counts(frames, threshold), scored))
    return metrics


def _tracking_metrics(counts: list[MotCounts], scored: np.ndarray) -> dict[str, float | None]:
    def mean(values):
        values = [v for v, ok in zip(values, scored) if ok and not np.isnan(v)]
        return float(np.mean(values)) if values else None

    mota = {n: (c.mota if ok and not np.isnan(c.mota) else None) for n, c, ok in zip(JOINTS, counts, scored)}
    out = {"MOTA": mean([c.mota for c in counts]), "MOTP": mean([c.motp for c in counts]),
           "precision": mean([c.precision for c in counts]), "recall": mean([c.recall for c in counts]),
           # a count, not a fraction: identity switches of the scored joints' tracks, summed
           "switches": int(sum(c.switches for c, ok in zip(counts, scored) if ok))}
    out.update({f"MOTA/{k}": v for k, v in group_means(mota, COLUMNS).items()})
    out.update({f"MOTA/{n}": v for n, v in mota.items()})
    return out
