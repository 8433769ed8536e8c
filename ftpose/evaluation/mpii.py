"""MPII multi-person evaluation: per-part AP with PCKh@0.5 matching (the paper's Table 2).

Ground truth is the MPII json list used by most pose codebases (one record per person:
``image``, ``joints`` 16x2, ``joints_vis``; optional ``head_box`` ``[x1, y1, x2, y2]``) or
the official ``mpii_human_pose_v1_u12_1.mat`` release.  All annotated people of an image
form one frame.

The reference length of PCKh is 0.6 times the diagonal of the person's head box, as in
the MPII tool.  The json list carries no head boxes (they live only in the .mat), so
without ``head_box`` the length is the head segment (upper neck to head top), which is
how Andriluka et al. (2014) define PCKh in the first place.

The protocol scores 14 joints (pelvis and thorax are not evaluated) in the columns Head
(upper neck, head top), Shoulder, Elbow, Wrist, Hip, Knee, Ankle and mAP (mean over the
joints).  Predictions in the MPII layout are scored as given.  Predictions in COCO-17 or
the network's OpenPose-18 layout have no upper neck and no head top, so their Head
column is not applicable (None) and their mAP is the mean over the 12 joints they can
express, which is not comparable with published MPII numbers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftpose.data.mpii import mat_points, read_mpii_json, read_mpii_release
from ftpose.evaluation import malformed_as_input_error
from ftpose.evaluation.pckh import (  # noqa: F401  (head_size_from_box: part of this module's API)
    BODY_COLUMNS, PCKH_THRESHOLD, Frame, expressible, group_means, head_size_from_box,
    joint_average_precisions, protocol_joints,
)
from ftpose.files import InputError, read_json
from ftpose.keypoints import COCO17, MPII16, OPENPOSE18, KeypointSet


# The 14 joints of the MPII tool, in its order.
JOINTS = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
          "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
          "upper_neck", "head_top")
COLUMNS = {"Head": ("upper_neck", "head_top"), **BODY_COLUMNS}


@dataclass
class GroundTruthImage:
    """The annotated people of one MPII image: ``keypoints (G, 16, 3)`` in MPII16 order."""

    image: str
    keypoints: np.ndarray
    head_size: np.ndarray


@dataclass
class PredictedPeople:
    """People predicted in one image: ``keypoints (P, K, 3)`` and ``scores (P, K)`` in some layout."""

    keypoints: np.ndarray
    scores: np.ndarray


def head_segment(keypoints: np.ndarray) -> float:
    """Upper neck to head top, NaN when either is unlabelled (the person can then not match)."""
    neck, top = keypoints[MPII16.index["upper_neck"]], keypoints[MPII16.index["head_top"]]
    if neck[2] <= 0 or top[2] <= 0:
        return float("nan")
    return float(np.hypot(*(top[:2] - neck[:2])))


def load_ground_truth(path) -> list[GroundTruthImage]:
    """MPII annotations from a json list or the official ``.mat`` release, grouped by image."""
    path = Path(path)
    people = _people_from_mat(path) if path.suffix.lower() == ".mat" else _people_from_json(path)
    by_image: dict[str, list] = defaultdict(list)
    with malformed_as_input_error(path, "the annotation structure"):
        for image, keypoints, head_size in people:
            by_image[image].append((keypoints, head_size))
    if not by_image:
        raise InputError(path, "contains no annotated people")
    return [GroundTruthImage(image, np.stack([k for k, _ in v]), np.array([h for _, h in v]))
            for image, v in by_image.items()]


def _people_from_json(path: Path):
    for person in read_mpii_json(path):
        keypoints = np.where(person.labelled[:, None], np.concatenate([person.joints, np.ones((len(MPII16), 1))], 1),
                             0.0)
        head = head_size_from_box(person.head_box) if person.head_box is not None else head_segment(keypoints)
        yield person.image, keypoints, head


def _people_from_mat(path: Path):
    for image, _, rect in read_mpii_release(path):
        if not all(k in rect._fieldnames for k in ("x1", "y1", "x2", "y2")):
            continue
        points = mat_points(rect)
        if not points:
            continue
        keypoints = np.zeros((len(MPII16), 3))
        for p in points:
            keypoints[int(p.id)] = (float(p.x), float(p.y), 1.0)
        yield image, keypoints, head_size_from_box((rect.x1, rect.y1, rect.x2, rect.y2))


def load_results(path, layout: KeypointSet | None = None) -> tuple[dict[str, PredictedPeople], KeypointSet]:
    """Predictions from a json list of ``{"image", "keypoints", "score"}`` records.

    ``keypoints`` holds ``3 K`` values; the layout is the MPII layout for 16 joints, COCO-17
    for 17 and OpenPose-18 for 18 unless ``layout`` says otherwise.  A joint is ranked by
    ``keypoint_scores[k]`` when the record has that list, else by the person's ``score``.
    """
    data = read_json(path)
    if not isinstance(data, list):
        raise InputError(path, "not a results file (top level is not a list of records)")
    by_count = {len(s): s for s in (MPII16, COCO17, OPENPOSE18)}
    out: dict[str, list] = defaultdict(list)
    with malformed_as_input_error(path, "a results record"):
        for i, record in enumerate(data):
            if not isinstance(record, dict) or "image" not in record or "keypoints" not in record:
                raise InputError(path, f"record {i} lacks 'image' or 'keypoints'")
            values = np.asarray(record["keypoints"], np.float64).ravel()
            layout = layout or by_count.get(values.size // 3)  # the first record decides
            if layout is None or values.size != 3 * len(layout):
                raise InputError(path, f"record {i} ({record['image']}) has {values.size} keypoint values; "
                                       f"expected 48 (MPII), 51 (COCO) or 54 (OpenPose-18) for all records")
            out[record["image"]].append((values.reshape(-1, 3), _joint_scores(record, len(layout), path, i)))
    layout = layout or MPII16
    return {image: PredictedPeople(np.stack([k for k, _ in v]), np.stack([s for _, s in v]))
            for image, v in out.items()}, layout


def _joint_scores(record: dict, num_joints: int, path, index: int) -> np.ndarray:
    if "keypoint_scores" in record:
        scores = np.asarray(record["keypoint_scores"], np.float64).ravel()
        if scores.size != num_joints:
            raise InputError(path, f"record {index}: {scores.size} keypoint_scores for {num_joints} joints")
        return scores
    if "score" not in record:
        raise InputError(path, f"record {index} has neither 'score' nor 'keypoint_scores'")
    return np.full(num_joints, float(record["score"]))


def make_frames(ground_truth: list[GroundTruthImage], predictions: dict[str, PredictedPeople],
                layout: KeypointSet) -> tuple[list[Frame], np.ndarray]:
    """Protocol frames for every ground-truth image, and which joints ``layout`` can express."""
    gt_index = [MPII16.index[n] for n in JOINTS]
    frames = []
    for image in ground_truth:
        people = predictions.get(image.image)
        if people is None or len(people.keypoints) == 0:
            empty = np.zeros((0, len(layout), 3))
            people = PredictedPeople(empty, np.zeros((0, len(layout))))
        xy, present, score = protocol_joints(people.keypoints, people.scores, layout, MPII16, JOINTS)
        gt = image.keypoints[:, gt_index]
        frames.append(Frame(gt[..., :2], gt[..., 2] > 0, image.head_size, xy, present, score))
    return frames, expressible(layout, JOINTS)


def evaluate_mpii(ground_truth, predictions: dict[str, PredictedPeople], layout: KeypointSet = MPII16,
                  threshold: float = PCKH_THRESHOLD) -> dict[str, float | None]:
    """Table 2 metrics (fractions in 0..1): Head ... Ankle, mAP, and ``AP/<joint>`` per joint.

    ``ground_truth`` is a path or the list from :func:`load_ground_truth`.  Predictions
    for images without ground truth are ignored (the protocol scores annotated images).
    Columns of joints that ``layout`` lacks are None and excluded from mAP.
    """
    if not isinstance(ground_truth, list):
        ground_truth = load_ground_truth(ground_truth)
    frames, scored = make_frames(ground_truth, predictions, layout)
    per_joint = {name: (float(ap) if ok else None)
                 for name, ap, ok in zip(JOINTS, joint_average_precisions(frames, threshold), scored)}
    metrics = group_means(per_joint, COLUMNS)
    scored = [v for v in per_joint.values() if v is not None and not np.isnan(v)]
    metrics["mAP"] = float(np.mean(scored)) if scored else None
    metrics.update({f"AP/{name}": (None if v is None or np.isnan(v) else v) for name, v in per_joint.items()})
    return metrics
