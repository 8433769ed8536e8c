"""A clip composed from a real photo: two real people walk across each other.

The bundled sample photo (COCO 790) has four annotated people.  Two of them are cut
out along their skeleton (a mask of thick limbs around the annotated joints, feathered)
and pasted onto the photo blurred beyond recognition, one moving right and one moving
left, so that they meet, overlap (the right-to-left one in front) and part.  The
ground truth is the annotations moved with them; joints covered by the front person
are unlabelled.  Used by tests/test_tracking.py and benchmarks/tracking_quality.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ftpose.files import SAMPLE_PHOTO, read_image
from ftpose.keypoints import COCO17

ANNOTATIONS = Path(__file__).parent / "data" / "000000000790_keypoints.json"
WALKERS = (1, 3)   # annotation indices: the person at the left edge and the one at the right


@dataclass
class Clip:
    frames: list[np.ndarray]          # BGR
    keypoints: np.ndarray             # (T, 2, 17, 3) COCO-17 ground truth per frame, walker 0 and 1
    areas: np.ndarray                 # (2,) annotation areas (OKS scale)
    head_boxes: np.ndarray            # (T, 2, 4) x, y, w, h around each walker's head


def _cut_out(image: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The person's pixels, a feathered mask of their body and the crop's top-left corner."""
    labelled = keypoints[:, 2] > 0
    x0, y0 = keypoints[labelled, :2].min(0)
    x1, y1 = keypoints[labelled, :2].max(0)
    height = y1 - y0
    thickness = max(4, int(0.2 * height))
    mask = np.zeros(image.shape[:2], np.uint8)
    for a, b in COCO17.skeleton:
        if labelled[a] and labelled[b]:
            cv2.line(mask, tuple(int(v) for v in keypoints[a, :2]), tuple(int(v) for v in keypoints[b, :2]), 255,
                     thickness)
    for k in np.flatnonzero(labelled):
        cv2.circle(mask, tuple(int(v) for v in keypoints[k, :2]), thickness // 2, 255, -1)
    head = keypoints[:5][labelled[:5]]
    if len(head):
        cv2.circle(mask, tuple(int(v) for v in head[:, :2].mean(0)), int(0.12 * height), 255, -1)
    margin = thickness
    left, top = max(0, int(x0) - margin), max(0, int(y0) - 2 * margin)
    right, bottom = min(image.shape[1], int(x1) + margin), min(image.shape[0], int(y1) + margin)
    mask = cv2.GaussianBlur(mask, (0, 0), thickness / 4)[top:bottom, left:right]
    return image[top:bottom, left:right], mask.astype(np.float32) / 255.0, (left, top)


def _head_box(keypoints: np.ndarray) -> np.ndarray:
    labelled = keypoints[:, 2] > 0
    body = keypoints[labelled, :2]
    size = 0.25 * (body[:, 1].max() - body[:, 1].min())
    head = keypoints[:5][labelled[:5]]
    centre = head[:, :2].mean(0) if len(head) else body[body[:, 1].argmin()]
    return np.array([centre[0] - size / 2, centre[1] - size / 2, size, size])


def crossing_clip(frames: int = 10, travel: float = 0.75, missing: tuple[int, ...] = ()) -> Clip:
    """``frames`` frames over which the walkers each travel ``travel`` of the photo's
    width towards each other; the back walker is left out of the frames in ``missing``."""
    photo = read_image(SAMPLE_PHOTO)
    annotations = json.loads(ANNOTATIONS.read_text())["annotations"]
    people = [np.array(annotations[i]["keypoints"], np.float64).reshape(17, 3) for i in WALKERS]
    areas = np.array([annotations[i]["area"] for i in WALKERS])
    background = cv2.GaussianBlur(photo, (0, 0), 25)
    height, width = photo.shape[:2]
    cutouts = [_cut_out(photo, p) for p in people]
    # walker 0 starts at the left edge and moves right; walker 1 starts at the right and moves left
    starts = [-cutouts[0][2][0], width - cutouts[1][0].shape[1] - cutouts[1][2][0]]
    shift = travel * width
    out_frames, out_keypoints, out_heads = [], [], []
    for t in range(frames):
        progress = t / max(frames - 1, 1)
        offsets = [starts[0] + progress * shift, starts[1] - progress * shift]
        canvas = background.astype(np.float32)
        truth = []
        covered = np.zeros((height, width), bool)
        for walker in (0, 1):
            pixels, mask, (left, top) = cutouts[walker]
            dx = int(round(offsets[walker]))
            x0, x1 = max(0, left + dx), min(width, left + dx + pixels.shape[1])
            if walker == 0 and t in missing:
                truth.append(np.zeros((17, 3)))
                continue
            crop = slice(x0 - (left + dx), x1 - (left + dx))
            rows = slice(top, top + pixels.shape[0])
            alpha = mask[:, crop, None]
            canvas[rows, x0:x1] = canvas[rows, x0:x1] * (1 - alpha) + pixels[:, crop] * alpha
            moved = people[walker].copy()
            moved[:, 0] += dx
            inside = (moved[:, 0] >= 0) & (moved[:, 0] < width)
            moved[~inside | (moved[:, 2] == 0)] = 0
            truth.append(moved)
            if walker == 1:
                covered[rows, x0:x1] = mask[:, crop] > 0.5
        back = truth[0]
        hidden = back[:, 2] > 0
        hidden &= covered[np.clip(back[:, 1].astype(int), 0, height - 1), np.clip(back[:, 0].astype(int), 0, width - 1)]
        back[hidden] = 0
        out_frames.append(np.clip(canvas, 0, 255).astype(np.uint8))
        out_keypoints.append(np.stack(truth))
        out_heads.append(np.stack([_head_box(people[w]) + [offsets[w], 0, 0, 0] for w in (0, 1)]))
    return Clip(out_frames, np.stack(out_keypoints), areas, np.stack(out_heads))


def write_video(clip: Clip, path, fps: float = 10.0) -> Path:
    from ftpose.video import VideoWriter

    with VideoWriter(path, fps, quality=12) as writer:
        for frame in clip.frames:
            writer.write(frame)
    return Path(path)


def posetrack_sequence(clip: Clip, name: str):
    """The clip's ground truth as a PoseTrack sequence (frames named ``NAME/000000.jpg``...)."""
    from ftpose.evaluation import posetrack as pt
    from ftpose.keypoints import POSETRACK17, convert

    frames = []
    for t, (truth, heads) in enumerate(zip(clip.keypoints, clip.head_boxes)):
        keypoints = convert(truth, COCO17, POSETRACK17)
        keypoints[..., 2] = (keypoints[..., 2] > 0).astype(float)
        head_size = pt.HEAD_BOX_FACTOR * np.hypot(heads[:, 2], heads[:, 3])
        frames.append(pt.GroundTruthFrame(f"{name}/{t:06d}.jpg", None, keypoints, head_size, np.array([0, 1])))
    return pt.Sequence(name, frames)


def posetrack_predictions(frames, name: str) -> dict:
    """Tracked ``People`` per frame as PoseTrack predictions for :func:`posetrack_sequence`."""
    from ftpose.evaluation import posetrack as pt

    out = {}
    for t, people in enumerate(frames):
        coco = people.to_coco17().astype(np.float64)
        out[f"{name}/{t:06d}.jpg"] = pt.PredictedPeople(coco, coco[..., 2], people.track_ids)
    return out
