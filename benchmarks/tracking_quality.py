"""Tracking against two baselines, scored with PoseTrack's CLEAR MOT (``ftpose eval``'s code).

Clips: tests/crossing_clip.py, two real people from the sample photo walking across
each other (the back one hidden while they overlap), at several speeds (fewer frames
= faster), with ground truth moved along.  The network's detections of every frame
(``--model``, default thresholds) get ids three ways:

- ``ftpose.Tracker``: OKS with motion prediction + box IoU, Hungarian, tracks survive
  missed frames;
- "new id per frame": every detection its own id (what a per-frame detector gives);
- "nearest box": each detection takes the id of the previous frame's detection whose
  box centre is nearest (optimal assignment, pairs further apart than the larger box's
  diagonal refused), a new id otherwise: no motion model, no memory of missed people.

Identity switches, MOTA, precision and recall are summed/averaged over the clips by
``ftpose.evaluation.posetrack`` (per joint, PCKh@0.5 with a head box from the
annotations).  Run from the project root:

    python benchmarks/tracking_quality.py --model ftnet-light --threads 1
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))   # the clip composer the tests use

from crossing_clip import crossing_clip, posetrack_predictions, posetrack_sequence  # noqa: E402

from ftpose.evaluation import posetrack as pt  # noqa: E402
from ftpose.grouping import People  # noqa: E402
from ftpose.keypoints import COCO17  # noqa: E402
from ftpose.tracking import Tracker, keypoint_boxes  # noqa: E402


def new_id_per_frame(frames: list[People]) -> list[People]:
    out, next_id = [], 0
    for people in frames:
        out.append(People(people.keypoints, people.scores, np.arange(next_id, next_id + len(people))))
        next_id += len(people)
    return out


def nearest_box(frames: list[People]) -> list[People]:
    out, next_id, previous = [], 0, None
    for people in frames:
        ids = np.full(len(people), -1, np.int64)
        boxes = keypoint_boxes(people.keypoints)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        if previous is not None and len(people) and len(previous[0]):
            old_boxes, old_ids = previous
            old_centres = (old_boxes[:, :2] + old_boxes[:, 2:]) / 2
            distance = np.linalg.norm(centres[:, None] - old_centres[None], axis=-1)
            diagonal = np.maximum(np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=1)[:, None],
                                  np.linalg.norm(old_boxes[:, 2:] - old_boxes[:, :2], axis=1)[None])
            rows, cols = linear_sum_assignment(distance)
            for r, c in zip(rows, cols):
                if distance[r, c] <= diagonal[r, c]:
                    ids[r] = old_ids[c]
        for i in np.flatnonzero(ids < 0):
            ids[i] = next_id
            next_id += 1
        out.append(People(people.keypoints, people.scores, ids))
        previous = (boxes, ids)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ftnet-light")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--lengths", default="8,12,16,24", help="frames per clip (fewer: faster walkers)")
    parser.add_argument("--sweep", action="store_true", help="also try TrackerParams around the defaults")
    args = parser.parse_args()
    import torch

    from ftpose.predictor import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = Predictor(args.model)
    sequences, clips = [], []
    by_method = {"ftpose.Tracker": {}, "new id per frame": {}, "nearest box": {}}
    for length in (int(v) for v in args.lengths.split(",")):
        clip = crossing_clip(frames=length)
        name = f"crossing{length}"
        detections = [p.filtered(0.1, 3) for p in predictor.predict_batch(clip.frames)]
        sequences.append(posetrack_sequence(clip, name))
        clips.append((name, detections))
        for method, tracked in (("ftpose.Tracker", list(Tracker().track(detections))),
                                ("new id per frame", new_id_per_frame(detections)),
                                ("nearest box", nearest_box(detections))):
            by_method[method].update(posetrack_predictions(tracked, name))
        print(f"{name}: {sum(len(p) for p in detections)} detections in {length} frames", file=sys.stderr)
    print(f"{len(sequences)} clips ({args.lengths} frames), model {args.model}\n")
    print("| ids from | ID switches | MOTA % | precision % | recall % |")
    print("|---|---:|---:|---:|---:|")
    for method, found in by_method.items():
        m = pt.evaluate_posetrack(sequences, found, COCO17)
        print(f"| {method} | {m['switches']} | {100 * m['MOTA']:.1f} | {100 * m['precision']:.1f} | "
              f"{100 * m['recall']:.1f} |")
    if args.sweep:
        from ftpose.tracking import TrackerParams

        print("\n| max_missed | min_similarity | max_centre_distance | ID switches | MOTA % |")
        print("|---:|---:|---:|---:|---:|")
        for max_missed in (3, 10, 15):
            for min_similarity in (0.1, 0.15, 0.3):
                for max_centre_distance in (0.0, 0.5):
                    params = TrackerParams(max_missed, min_similarity, max_centre_distance)
                    found = {}
                    for name, detections in clips:
                        found.update(posetrack_predictions(list(Tracker(params).track(detections)), name))
                    m = pt.evaluate_posetrack(sequences, found, COCO17)
                    print(f"| {max_missed} | {min_similarity} | {max_centre_distance} | {m['switches']} | "
                          f"{100 * m['MOTA']:.1f} |")


if __name__ == "__main__":
    main()
