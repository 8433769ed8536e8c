"""Multi-person average precision with PCKh matching (Pishchulin et al., CVPR 2016).

The protocol of the MPII multi-person benchmark and of PoseTrack (per frame):

1. In each frame, every predicted person is compared with every ground-truth person by
   PCKh: the fraction of the person's annotated joints that the prediction places within
   ``threshold`` (0.5) head sizes.
2. Each prediction keeps only its best ground-truth person; each ground-truth person
   then takes the prediction with the highest PCKh among those that chose it (ties: the
   first).  A ground truth no prediction reached stays unmatched, and so do predictions
   whose preferred ground truth went to another.
3. Every predicted joint becomes one detection for its joint type, scored by its own
   confidence: a true positive when its person is matched and the joint lies within the
   threshold of the matched person's joint, a false positive otherwise.
4. AP per joint type over all frames (VOC area under the interpolated precision/recall
   curve, ranked by joint score), the number of positives being the annotated joints.

This follows the MPII MATLAB tool (``assignGTmulti.m``, ``evaluateAP.m``) and its Python
port in poseval step by step, so numbers agree with both; ranking ties are broken in
input order (a stable sort, as MATLAB's ``sort``).  Only the data model is ours.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ftpose.keypoints import KeypointSet, convert

HEAD_BOX_FACTOR = 0.6  # the MPII tool's and poseval's head size: 0.6 x head box diagonal


def head_size_from_box(box) -> float:
    """PCKh's reference length from a head box ``(x1, y1, x2, y2)``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return HEAD_BOX_FACTOR * float(np.hypot(x2 - x1, y2 - y1))

# The table columns every PCKh protocol shares (MPII and PoseTrack differ only in "Head").
BODY_COLUMNS = {
    "Shoulder": ("right_shoulder", "left_shoulder"),
    "Elbow": ("right_elbow", "left_elbow"),
    "Wrist": ("right_wrist", "left_wrist"),
    "Hip": ("right_hip", "left_hip"),
    "Knee": ("right_knee", "left_knee"),
    "Ankle": ("right_ankle", "left_ankle"),
}

PCKH_THRESHOLD = 0.5


@dataclass
class Frame:
    """Ground truth and predictions of one image in a protocol's joint order (``J`` joints).

    ``gt`` is ``(G, J, 2)`` with ``gt_labelled`` ``(G, J)``; ``head_size`` ``(G,)`` is the
    PCKh reference length of each ground-truth person.  ``pred`` is ``(P, J, 2)`` with
    ``pred_present`` and ``pred_score`` ``(P, J)``.  Track ids are ``(G,)``/``(P,)`` integer
    arrays, or None when not known.
    """

    gt: np.ndarray
    gt_labelled: np.ndarray
    head_size: np.ndarray
    pred: np.ndarray
    pred_present: np.ndarray
    pred_score: np.ndarray
    sequence: str = ""
    gt_track: np.ndarray | None = None
    pred_track: np.ndarray | None = None

    @property
    def num_joints(self) -> int:
        return self.gt_labelled.shape[1]


@dataclass
class FrameMatch:
    """The outcome of matching one frame: normalised distances and the person assignment."""

    distance: np.ndarray   # (P, G, J) joint distance / head size, inf where not comparable
    within: np.ndarray     # (P, G, J) distance <= threshold
    gt_of_pred: np.ndarray  # (P,) matched ground-truth index, -1 when unmatched


def match_frame(frame: Frame, threshold: float = PCKH_THRESHOLD) -> FrameMatch:
    """Assign predicted people to ground-truth people by PCKh (steps 1-2 of the protocol)."""
    num_pred, num_gt = len(frame.pred), len(frame.gt)
    if num_pred == 0 or num_gt == 0:
        shape = (num_pred, num_gt, frame.num_joints)
        return FrameMatch(np.full(shape, np.inf), np.zeros(shape, bool), np.full(num_pred, -1))
    offsets = frame.pred[:, None] - frame.gt[None]
    comparable = frame.pred_present[:, None] & frame.gt_labelled[None]
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.linalg.norm(offsets, axis=-1) / frame.head_size[None, :, None]
    distance = np.where(comparable, distance, np.inf)
    within = distance <= threshold
    labelled = frame.gt_labelled.sum(1)
    pckh = within.sum(2) / np.maximum(labelled, 1)[None]
    preferred = pckh.argmax(1)
    kept = np.zeros_like(pckh)
    kept[np.arange(num_pred), preferred] = pckh[np.arange(num_pred), preferred]
    winner = kept.argmax(0)
    gt_of_pred = np.full(num_pred, -1)
    for g in np.flatnonzero(kept.max(0) > 0):
        gt_of_pred[winner[g]] = g
    return FrameMatch(distance, within, gt_of_pred)


@dataclass
class JointDetections:
    """Scored detections of one joint type over all frames, and its number of positives."""

    scores: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    positives: int = 0


def collect_detections(frames, threshold: float = PCKH_THRESHOLD) -> list[JointDetections]:
    """Per joint type, the scores and true/false labels of every predicted joint (step 3)."""
    if not frames:
        return []
    joints = [JointDetections() for _ in range(frames[0].num_joints)]
    for frame in frames:
        match = match_frame(frame, threshold)
        num_pred = len(frame.pred)
        correct = np.zeros((num_pred, frame.num_joints), bool)
        matched = match.gt_of_pred >= 0
        correct[matched] = match.within[np.flatnonzero(matched), match.gt_of_pred[matched]]
        for j, joint in enumerate(joints):
            present = frame.pred_present[:, j]
            joint.scores.append(frame.pred_score[present, j])
            joint.labels.append(correct[present, j])
            joint.positives += int(frame.gt_labelled[:, j].sum())
    return joints


def average_precision(scores, labels, positives: int) -> float:
    """VOC AP (area under the monotone precision envelope) of ranked detections.

    NaN when there are no positives; 0 when there are positives but no detections.
    """
    scores = np.concatenate([np.ravel(s) for s in scores]) if isinstance(scores, list) else np.ravel(scores)
    labels = np.concatenate([np.ravel(v) for v in labels]) if isinstance(labels, list) else np.ravel(labels)
    if positives == 0:
        return float("nan")
    if scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(labels[order].astype(np.float64))
    recall = hits / positives
    precision = hits / np.arange(1, len(hits) + 1)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def joint_average_precisions(frames, threshold: float = PCKH_THRESHOLD) -> np.ndarray:
    """``(J,)`` AP of each joint type over ``frames`` (NaN where no joint is annotated)."""
    return np.array([average_precision(j.scores, j.labels, j.positives)
                     for j in collect_detections(frames, threshold)])


def group_means(per_joint: dict[str, float], groups: dict[str, tuple[str, ...]]) -> dict[str, float | None]:
    """Mean AP of each named group of joints, skipping joints that are None or NaN."""
    out = {}
    for name, members in groups.items():
        values = [per_joint[m] for m in members if per_joint.get(m) is not None and not np.isnan(per_joint[m])]
        out[name] = float(np.mean(values)) if values else None
    return out


def protocol_joints(keypoints: np.ndarray, scores: np.ndarray, layout: KeypointSet,
                    protocol: KeypointSet, joint_names: tuple[str, ...]):
    """Predicted people of any layout in a protocol's joint order.

    ``keypoints`` is ``(P, K, 3)`` and ``scores`` ``(P, K)`` in ``layout``.  Returns
    ``xy (P, J, 2)``, ``present (P, J)`` and ``score (P, J)``.  A joint is present unless
    it is all zero ``(0, 0, 0)``, the convention of COCO and PoseTrack result files.
    """
    converted = convert(keypoints, layout, protocol)[:, [protocol.index[n] for n in joint_names]]
    present = np.any(converted != 0, axis=-1)
    known = expressible(layout, joint_names)
    source = [layout.index.get(n, 0) for n in joint_names]
    scores = np.asarray(scores, np.float64).reshape(len(keypoints), len(layout))
    score = np.where(known[None], scores[:, source], 0.0)
    return converted[..., :2], present & known[None], score


def expressible(layout: KeypointSet, joint_names: tuple[str, ...]) -> np.ndarray:
    """Which protocol joints ``layout`` has at all.  A joint it lacks is never predicted;
    scoring it 0 would measure the layout, not the method, so it is left out."""
    return np.array([n in layout.index for n in joint_names])
