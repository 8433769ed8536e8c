"""How long grouping takes for an image with 10 people, against a plain Python version.

The scene is real: the 10 most completely annotated people of COCO image 370162 (the
most crowded image in ``../shared/data/coco_mini``), scaled as the predictor scales
an image (height 368, aspect kept, width a multiple of 8).  The maps are the
encoder's perfect maps at stride 8, so every joint and limb is there to group.
Timed: ``ftpose.grouping.decode`` on the stride-8 maps (what the predictor does),
the same on maps upsampled to the input size (cubic, as OpenPose; the upsampling is
timed separately), and :func:`decode_with_loops`, the same algorithm written as
plain Python loops, which must give the same people.

    python benchmarks/decoding_speed.py [--repeat 500]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from ftpose.data.coco import load_coco_annotations
from ftpose.grouping import _REACH, GroupingParams, People, decode
from ftpose.keypoints import COCO17, LIMBS, NETWORK, NUM_LIMBS, NUM_PARTS, convert
from ftpose.targets import encode

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ANNOTATIONS = DATA / "coco_mini" / "annotations" / "person_keypoints_train2017.json"
IMAGE_ID, NUM_PEOPLE, INPUT_HEIGHT, STRIDE = 370162, 10, 368, 8


def decode_with_loops(heatmaps: np.ndarray, pafs: np.ndarray, params: GroupingParams | None = None) -> People:
    """``ftpose.grouping.decode`` written as plain Python loops over cells, pairs and groups."""
    params = params or GroupingParams()
    peaks = _peaks(heatmaps[:NUM_PARTS].tolist(), params.peak_threshold, params.max_peaks)  # (part, x, y, value)
    connections = _connections(peaks, pafs, params)
    label, limb_totals = _groups(peaks, connections)
    if params.merge_fragments:
        label, limb_totals = _merge(peaks, label, limb_totals, params.merge_reach)
    people = []
    for g, limb_total in enumerate(limb_totals):
        members = [p for p in range(len(peaks)) if label[p] == g]
        if len(members) < params.min_parts:
            continue
        keypoints = [[0.0, 0.0, 0.0] for _ in range(NUM_PARTS)]
        for p in members:
            part, x, y, value = peaks[p]
            keypoints[part] = [x, y, value]
        score = (sum(value for _, _, _, value in (peaks[p] for p in members)) + limb_total) / (NUM_PARTS + NUM_LIMBS)
        people.append((score, keypoints))
    people.sort(key=lambda person: -person[0])
    if not people:
        return People.empty()
    return People(np.array([k for _, k in people], np.float32), np.array([s for s, _ in people], np.float32))


def _peaks(maps, threshold, max_peaks):
    h, w = len(maps[0]), len(maps[0][0])
    peaks = []
    for part, rows in enumerate(maps):
        found = []
        for y in range(h):
            for x in range(w):
                centre = rows[y][x]
                left = rows[y][x - 1] if x > 0 else None
                right = rows[y][x + 1] if x < w - 1 else None
                up = rows[y - 1][x] if y > 0 else None
                down = rows[y + 1][x] if y < h - 1 else None
                if (centre < threshold or (left is not None and centre <= left) or (up is not None and centre <= up)
                        or (right is not None and centre < right) or (down is not None and centre < down)):
                    continue
                log = [None if v is None else math.log(max(v, 1e-12)) for v in (left, centre, right, up, down)]
                curvature_x = _curvature(log[0], log[1], log[2])
                curvature_y = _curvature(log[3], log[1], log[4])
                found.append((part, x + _offset(log[0], log[1], log[2], curvature_x, curvature_y),
                              y + _offset(log[3], log[1], log[4], curvature_y, curvature_x), centre))
        strongest = sorted(range(len(found)), key=lambda i: -found[i][3])[:max_peaks]
        peaks += [found[i] for i in sorted(strongest)]
    return peaks


def _curvature(before, centre, after):
    return None if before is None or after is None else before - 2 * centre + after


def _offset(before, centre, after, curvature, other):
    if curvature is not None and curvature < 0:
        offset = 0.5 * (before - after) / curvature
    elif curvature is None and other is not None and other < 0 and (before is None) != (after is None):
        offset = -(centre - before) / other - 0.5 if after is None else 0.5 - (after - centre) / other
    else:
        return 0.0
    return min(max(offset, -0.5), 0.5)


def _connections(peaks, pafs, params):
    _, h, w = pafs.shape
    samples = params.num_samples
    connections = []
    for k, (first, second) in enumerate(LIMBS):
        field_x, field_y = pafs[2 * k], pafs[2 * k + 1]
        for p, (part_p, xa, ya, _) in enumerate(peaks):
            if part_p != first:
                continue
            for q, (part_q, xb, yb, _) in enumerate(peaks):
                if part_q != second:
                    continue
                dx, dy = xb - xa, yb - ya
                length = max(math.hypot(dx, dy), 1e-6)
                total, agreeing = 0.0, 0
                for d in range(samples):
                    t = d / (samples - 1)
                    x = min(max(round(xa + t * dx), 0), w - 1)
                    y = min(max(round(ya + t * dy), 0), h - 1)
                    projection = float(field_x[y, x]) * dx / length + float(field_y[y, x]) * dy / length
                    total += projection
                    agreeing += projection > params.paf_sample_threshold
                score = total / samples + min(0.5 * h / length - 1.0, 0.0)
                if agreeing / samples >= params.min_agreeing_fraction and score > 0:
                    connections.append((score, k, p, q))
    return connections


def _groups(peaks, connections):
    group_of = list(range(len(peaks)))
    used, totals = set(), {}
    for score, k, p, q in sorted(connections, key=lambda c: -c[0]):
        if (k, p) in used or (k, q) in used:
            continue
        used.update([(k, p), (k, q)])
        gp, gq = group_of[p], group_of[q]
        if gp != gq:
            members_p = [i for i in range(len(peaks)) if group_of[i] == gp]
            members_q = [i for i in range(len(peaks)) if group_of[i] == gq]
            if {peaks[i][0] for i in members_p} & {peaks[i][0] for i in members_q}:
                continue
            if len(members_p) < len(members_q):
                gp, gq, members_q = gq, gp, members_p
            for i in members_q:
                group_of[i] = gp
        totals[p] = totals.get(p, 0.0) + score
    roots = sorted(set(group_of))
    label = [roots.index(g) for g in group_of]
    limb_totals = [0.0] * len(roots)
    for p, total in totals.items():
        limb_totals[label[p]] += total
    return label, limb_totals


def _merge(peaks, label, limb_totals, max_reach):
    groups = [[p for p in range(len(peaks)) if label[p] == g] for g in range(len(limb_totals))]

    def ratio(p, q):
        (part_p, xp, yp, _), (part_q, xq, yq, _) = peaks[p], peaks[q]
        reach = _REACH[part_p, part_q]
        return math.inf if reach == 0 else math.hypot(xp - xq, yp - yq) / reach

    def height(members):
        return max([ratio(p, q) for p in members for q in members if p != q], default=0.0)

    heights = [height(m) for m in groups]
    positive = sorted(h for h in heights if h > 0)
    median = statistics.median(positive) if positive else 0.0
    limb_totals = list(limb_totals)
    alive = [True] * len(groups)
    for fallback in (0.0, median):
        while True:
            best = None
            for a in range(len(groups)):
                for b in range(a + 1, len(groups)):
                    if not (alive[a] and alive[b]):
                        continue
                    if {peaks[p][0] for p in groups[a]} & {peaks[p][0] for p in groups[b]}:
                        continue
                    scale = max(heights[a], heights[b], fallback)
                    across = [ratio(p, q) for p in groups[a] for q in groups[b]]
                    if not scale > 0 or max(across) > max_reach * scale:
                        continue
                    cost = (min(across) + max(across)) / (2 * scale)
                    if best is None or cost < best[0]:
                        best = (cost, a, b)
            if best is None:
                break
            _, a, b = best
            heights[a] = max(heights[a], heights[b], max(ratio(p, q) for p in groups[a] for q in groups[b]))
            groups[a] += groups[b]
            limb_totals[a] += limb_totals[b]
            alive[b] = False
    kept = [g for g in range(len(groups)) if alive[g]]
    new_label = [0] * len(peaks)
    for n, g in enumerate(kept):
        for p in groups[g]:
            new_label[p] = n
    return new_label, [limb_totals[g] for g in kept]


def scene_maps():
    """Stride-8 heatmaps and PAFs of the benchmark scene, and the input's size."""
    if not ANNOTATIONS.is_file():
        sys.exit(f"benchmark data not found: {ANNOTATIONS} (the shared real-data folder)")
    coco = load_coco_annotations(ANNOTATIONS)
    image = coco.imgs[IMAGE_ID]
    anns = sorted((a for a in coco.imgToAnns[IMAGE_ID] if a["num_keypoints"] > 0 and not a["iscrowd"]),
                  key=lambda a: -a["num_keypoints"])[:NUM_PEOPLE]
    keypoints = convert(np.array([a["keypoints"] for a in anns], float).reshape(-1, 17, 3), COCO17, NETWORK)
    ratio = INPUT_HEIGHT / image["height"]
    keypoints[..., :2] = (keypoints[..., :2] + 0.5) * ratio - 0.5
    width = int(math.ceil(image["width"] * ratio / STRIDE)) * STRIDE
    heatmaps, pafs = encode(keypoints, INPUT_HEIGHT, width, STRIDE)
    return heatmaps, pafs, (INPUT_HEIGHT, width)


def _canonical(people: People) -> np.ndarray:
    """The people's keypoints in an order that does not depend on ties between scores."""
    flat = people.keypoints.reshape(len(people), -1)
    return flat[np.lexsort(np.round(flat, 3).T[::-1])]


def median_ms(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def upsample(maps: np.ndarray, size) -> np.ndarray:
    height, width = size
    return cv2.resize(maps.transpose(1, 2, 0), (width, height), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=500, help="timed runs of the vectorised decoder")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    heatmaps, pafs, size = scene_maps()
    fast, slow = decode(heatmaps, pafs), decode_with_loops(heatmaps, pafs)
    if len(fast) != len(slow) or not np.allclose(_canonical(fast), _canonical(slow), atol=1e-4):
        sys.exit("the loop version disagrees with ftpose.grouping.decode")
    big = upsample(heatmaps, size), upsample(pafs, size)
    print(f"scene: COCO image {IMAGE_ID}, {NUM_PEOPLE} people, input {size[1]}x{size[0]}, "
          f"maps {heatmaps.shape[2]}x{heatmaps.shape[1]}; decoded {len(fast)} people")
    print(f"decode, stride-8 maps (vectorised)  {median_ms(lambda: decode(heatmaps, pafs), args.repeat):8.3f} ms median")
    print(f"decode, stride-8 maps (Python loops) {median_ms(lambda: decode_with_loops(heatmaps, pafs), 5):8.3f} ms median")
    print(f"upsampling 57 maps x8 (cv2, cubic)   {median_ms(lambda: (upsample(heatmaps, size), upsample(pafs, size)), 20):8.3f} ms median")
    print(f"decode, upsampled maps (vectorised)  {median_ms(lambda: decode(*big), 20):8.3f} ms median")


if __name__ == "__main__":
    main()
