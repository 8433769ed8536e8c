"""Jitter and lag of tracked keypoints, raw, One-Euro smoothed (live) and smoothed offline.

The video (default ``../shared/data/people/opencv-doc__vtest.avi``, pedestrians at
768x576, 10 fps) is run once through ``--model`` and ``ftpose.Tracker`` (default
thresholds); then, on the same tracked people:

- **jitter**: mean frame-to-frame keypoint acceleration ``|x(t+1) - 2 x(t) + x(t-1)|``
  in pixels, over every track joint found in the three frames by the detector (the
  same triplets for every variant, so filled-in gaps do not count);
- **lag**: the delay ``d`` (frames, 0.1 steps) that best aligns the variant with the
  offline-smoothed tracks, which are symmetric in time and so lag-free:
  ``argmin_d mean |variant(t) - offline(t - d)|``; the offline variant is aligned
  with the raw tracks instead;
- **shift**: mean distance of the variant's keypoints from the raw ones.

``--sweep`` also prints the One-Euro settings around the defaults.  Run from the
project root:

    python benchmarks/smoothing_jitter.py --model ftnet-light --threads 1 --max-frames 200
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ftpose.grouping import People
from ftpose.keypoints import NUM_PARTS
from ftpose.smoothing import OfflineParams, OneEuroParams, OneEuroSmoother, smooth_offline
from ftpose.sources import FrameSelection, VideoReader

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "people" / "opencv-doc__vtest.avi"


def tracks_array(frames: list[People]) -> tuple[np.ndarray, list[int]]:
    """``(T, tracks, 18, 3)`` keypoints (zeros where absent) and the track ids."""
    ids = sorted({int(t) for p in frames for t in p.track_ids})
    column = {t: i for i, t in enumerate(ids)}
    out = np.zeros((len(frames), len(ids), NUM_PARTS, 3))
    for f, people in enumerate(frames):
        for person, track in enumerate(people.track_ids.tolist()):
            out[f, column[track]] = people.keypoints[person]
    return out, ids


def jitter(variant: np.ndarray, raw: np.ndarray) -> float:
    found = raw[..., 2] > 0
    triplets = found[:-2] & found[1:-1] & found[2:]
    xy = variant[..., :2]
    acceleration = np.linalg.norm(xy[2:] - 2 * xy[1:-1] + xy[:-2], axis=-1)
    return float(acceleration[triplets].mean())


def shift(variant: np.ndarray, raw: np.ndarray) -> float:
    found = (raw[..., 2] > 0) & (variant[..., 2] > 0)
    return float(np.linalg.norm(variant[..., :2] - raw[..., :2], axis=-1)[found].mean())


def lag(variant: np.ndarray, reference: np.ndarray, raw: np.ndarray, max_delay: float = 5.0) -> float:
    """The delay in frames (0.1 steps) at which ``variant`` best matches ``reference`` delayed."""
    found = raw[..., 2] > 0
    frames = np.arange(len(raw))
    best, best_delay = np.inf, 0.0
    for delay in np.arange(0.0, max_delay + 1e-9, 0.1):
        errors = []
        for track in range(raw.shape[1]):
            for joint in range(NUM_PARTS):
                known = found[:, track, joint]
                if known.sum() < 10:
                    continue
                times = frames[known]
                wanted = times - delay
                inside = (wanted >= times[0]) & (wanted <= times[-1])
                shifted = np.stack([np.interp(wanted[inside], times, reference[known, track, joint, axis])
                                    for axis in (0, 1)], 1)
                errors.append(np.linalg.norm(variant[known, track, joint, :2][inside] - shifted, axis=1))
        error = float(np.concatenate(errors).mean())
        if error < best:
            best, best_delay = error, float(delay)
    return best_delay


def causal(frames: list[People], fps: float, params: OneEuroParams) -> list[People]:
    smoother = OneEuroSmoother(params)
    return [smoother.smooth(people, t / fps) for t, people in enumerate(frames)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--model", default="ftnet-light")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--max-frames", type=int, default=200)
    parser.add_argument("--cache", type=Path, help="keep the tracked people here (.npz) and reuse them")
    parser.add_argument("--sweep", action="store_true", help="also try One-Euro settings around the defaults")
    args = parser.parse_args()

    reader = VideoReader(args.video, FrameSelection(max_frames=args.max_frames))
    fps = reader.fps
    if args.cache is not None and args.cache.is_file():
        with np.load(args.cache) as saved:
            frames = [People(k.astype(np.float32), s.astype(np.float32), t.astype(np.int64))
                      for k, s, t in zip(np.split(saved["keypoints"], saved["splits"]),
                                         np.split(saved["scores"], saved["splits"]),
                                         np.split(saved["tracks"], saved["splits"]))]
    else:
        import torch

        from ftpose.predictor import Predictor

        if args.threads:
            torch.set_num_threads(args.threads)
        predictor = Predictor(args.model)
        frames = list(predictor.track(image for _, image in reader))
        if args.cache is not None:
            splits = np.cumsum([len(p) for p in frames])[:-1]
            np.savez(args.cache, keypoints=np.concatenate([p.keypoints for p in frames]),
                     scores=np.concatenate([p.scores for p in frames]),
                     tracks=np.concatenate([p.track_ids for p in frames]), splits=splits)

    raw, ids = tracks_array(frames)
    offline = tracks_array(smooth_offline(frames, OfflineParams()))[0]
    live = tracks_array(causal(frames, fps, OneEuroParams()))[0]
    print(f"{args.video.name}: {len(frames)} frames at {fps:g} fps, {len(ids)} tracks, "
          f"{sum(len(p) for p in frames)} tracked people, model {args.model}\n")
    print("| keypoints | jitter (px/frame²) | lag (frames) | shift from raw (px) |")
    print("|---|---:|---:|---:|")
    print(f"| raw (--track) | {jitter(raw, raw):.2f} | 0 | 0 |")
    print(f"| --smooth (One-Euro, defaults) | {jitter(live, raw):.2f} | {lag(live, offline, raw):.1f} | "
          f"{shift(live, raw):.2f} |")
    print(f"| --smooth-offline (defaults) | {jitter(offline, raw):.2f} | {lag(offline, raw, raw):.1f} | "
          f"{shift(offline, raw):.2f} |")
    if args.sweep:
        print("\n| min_cutoff | beta | jitter | lag |")
        print("|---:|---:|---:|---:|")
        for min_cutoff in (0.5, 1.0, 2.0):
            for beta in (0.5, 2.0, 8.0):
                variant = tracks_array(causal(frames, fps, OneEuroParams(min_cutoff=min_cutoff, beta=beta)))[0]
                print(f"| {min_cutoff} | {beta} | {jitter(variant, raw):.2f} | {lag(variant, offline, raw):.1f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
