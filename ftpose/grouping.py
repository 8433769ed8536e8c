"""Turning heatmaps and part affinity fields into people (paper §3.4).

1. **Peaks**: 4-neighbour non-maximum suppression on each part heatmap.  Exact ties
   are broken by position (a cell must beat its left and upper neighbours strictly
   and match its right and lower ones), so a flat top still gives a single peak.
   Each peak is refined to sub-cell precision by fitting a parabola to the logarithm
   of the heatmap along x and along y, which is exact for the Gaussian targets, so
   the stride-8 maps need no upsampling (see the README's oracle ablation).
2. **Limb scores** (eq. 6): for every pair of candidate joints of a limb, the mean
   over ``D = 10`` evenly spaced samples of the PAF (nearest cell, as OpenPose)
   projected on the pair's direction, plus OpenPose's length prior
   ``min(0.5 * map_height / length - 1, 0)``.  A pair is a candidate connection when
   at least 80% of its samples exceed 0.05 and its score is positive.
3. **Greedy connection**: per limb, from the highest score down; a joint is never
   used twice by one limb.
4. **Assembly**: connections of all limbs, again from the highest score down, join
   the groups of their two joints unless the two groups already hold a joint of the
   same type.  Unlike OpenPose's neck-rooted tree, nothing depends on a particular
   joint: a person without a neck (COCO has none when a shoulder is unlabelled) keeps
   together whatever its limbs connect.
5. **Fragment merging**: parts that no limb can join (a person without a neck has
   its legs cut off from its upper body, because hips connect only to the neck) are
   merged when their joint types do not overlap and they fit together geometrically
   (see :func:`_merge_fragments`).  What remains is kept, with a low score.

Person score (the ranking COCO AP uses): the sum of the person's joint confidences
and limb scores divided by the number of joints plus limbs in the layout (18 + 19),
so a complete, confident person scores near 1 and a fragment scores low.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ftpose.keypoints import COCO17, LIMB_LENGTHS, LIMBS, NETWORK, NUM_LIMBS, NUM_PARTS, convert

_LIMB_ENDS = np.array(LIMBS)  # (19, 2)


@dataclass(frozen=True)
class GroupingParams:
    """Thresholds of the decoder.

    The peak and PAF thresholds are OpenPose's (its C++ peak threshold, 0.05, scores
    higher on a trained network's maps than its Python demo's 0.1; see
    ``benchmarks/grouping_params.py``); ``merge_reach`` was chosen with the oracle
    (COCO AP changes by about 0.01 between 0.8 and 1.2).
    """

    peak_threshold: float = 0.05         # heatmap value a peak must reach
    max_peaks: int = 64                  # per part, the strongest; bounds the work on noisy maps
    num_samples: int = 10                # D: PAF samples per candidate limb (eq. 6)
    paf_sample_threshold: float = 0.05   # a sample "agrees" when its projection exceeds this
    min_agreeing_fraction: float = 0.8   # fraction of samples that must agree
    merge_fragments: bool = True         # join fragments that no limb connects (see _merge_fragments)
    merge_reach: float = 1.0             # how far, in skeleton reaches, merged joints may lie apart
    min_parts: int = 1                   # people with fewer joints are dropped


@dataclass(frozen=True)
class People:
    """People found in one image, in the network layout, sorted by score descending.

    ``keypoints`` is ``(P, 18, 3)`` float32 ``(x, y, confidence)``, all zero for a
    joint that was not found; ``scores`` is ``(P,)`` float32; ``track_ids`` is ``(P,)``
    int64 once a :class:`ftpose.tracking.Tracker` has followed them across frames, else
    None.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray | None = None

    @classmethod
    def empty(cls) -> People:
        return cls(np.zeros((0, NUM_PARTS, 3), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.scores)

    def scaled(self, fx: float, fy: float | None = None) -> People:
        """Coordinates after resizing the maps by ``fx`` (and ``fy``), pixel-centre convention.

        ``x -> (x + 0.5) * fx - 0.5``; e.g. ``scaled(8)`` takes stride-8 map coordinates
        to the network input's pixels.  Missing joints stay all zero.
        """
        fy = fx if fy is None else fy
        keypoints = self.keypoints.copy()
        found = keypoints[..., 2] > 0
        keypoints[..., 0] = np.where(found, (keypoints[..., 0] + 0.5) * fx - 0.5, 0.0)
        keypoints[..., 1] = np.where(found, (keypoints[..., 1] + 0.5) * fy - 0.5, 0.0)
        return replace(self, keypoints=keypoints)

    def to_coco17(self) -> np.ndarray:
        """``(P, 17, 3)`` keypoints in the COCO layout (the neck is dropped)."""
        return convert(self.keypoints, NETWORK, COCO17).astype(np.float32)

    def to_openpose18(self) -> np.ndarray:
        """``(P, 18, 3)`` keypoints in the OpenPose COCO-18 layout (the network's own; a copy)."""
        return self.keypoints.copy()

    def records(self, decimals: int = 2) -> list[dict]:
        """One JSON-ready dict per person: ``score`` and its ``coco17`` and ``openpose18`` keypoints.

        Each layout is a list of ``[x, y, confidence]`` in the order of
        ``ftpose.keypoints.COCO17`` / ``OPENPOSE18``; a joint not found is ``[0, 0, 0]``,
        as in COCO files.  This is what ``ftpose serve`` answers, so clients in any
        language can use either layout without ftpose's conversion rules.
        """
        def rounded(kp):
            return [[round(float(v), decimals) for v in joint] for joint in kp]

        return [{"score": round(float(s), 4), "coco17": rounded(coco), "openpose18": rounded(openpose)}
                for s, coco, openpose in zip(self.scores, self.to_coco17(), self.to_openpose18())]

    def draw(self, image: np.ndarray, min_confidence: float = 0.0) -> np.ndarray:
        """A copy of BGR ``image`` with every person's skeleton (``ftpose.visualize.draw_people``)."""
        from ftpose.visualize import draw_people

        return draw_people(image, self, min_confidence=min_confidence)

    def coco_results(self, image_id: int) -> list[dict]:
        """COCO keypoint result records (category 1, 51 values, score) for ``image_id``;
        tracked people's records also carry their ``track_id``."""
        records = [{"image_id": int(image_id), "category_id": 1,
                    "keypoints": [round(float(v), 2) for v in kp.ravel()], "score": float(s)}
                   for kp, s in zip(self.to_coco17(), self.scores)]
        if self.track_ids is not None:
            for record, track in zip(records, self.track_ids):
                record["track_id"] = int(track)
        return records

    def select(self, index) -> People:
        """The people at ``index`` (indices or a boolean mask), track ids kept."""
        return People(self.keypoints[index], self.scores[index],
                      None if self.track_ids is None else self.track_ids[index])

    def filtered(self, min_score: float = 0.0, min_joints: int = 0, max_people: int | None = None) -> People:
        """People scoring at least ``min_score`` with at least ``min_joints`` joints found,
        the best ``max_people`` of them (all when None)."""
        keep = np.flatnonzero((self.scores >= min_score) & ((self.keypoints[..., 2] > 0).sum(1) >= min_joints))
        return self.select(keep[:max_people])


def decode(heatmaps: np.ndarray, pafs: np.ndarray, params: GroupingParams | None = None) -> People:
    """Group ``(19, H, W)`` heatmaps and ``(38, H, W)`` PAFs into people.

    The maps may have any resolution; coordinates come back in the maps' own pixel
    units (cell centres at integer indices) with sub-cell precision.
    """
    params = params or GroupingParams()
    heatmaps = np.asarray(heatmaps, np.float32)
    pafs = np.ascontiguousarray(pafs, np.float32)
    if heatmaps.ndim != 3 or heatmaps.shape[0] < NUM_PARTS or pafs.shape != (2 * NUM_LIMBS,) + heatmaps.shape[1:]:
        raise ValueError(f"expected heatmaps (19, H, W) and PAFs (38, H, W), got {heatmaps.shape} and {pafs.shape}")
    parts, xy, confidence = find_peaks(heatmaps[:NUM_PARTS], params.peak_threshold, params.max_peaks)
    if len(parts) == 0:
        return People.empty()
    limb, first, second, score = _candidate_limbs(parts, xy, pafs, params)
    label, limb_totals = _assemble(parts, limb, first, second, score)
    if params.merge_fragments:
        label, limb_totals = _merge_fragments(parts, xy, label, limb_totals, params.merge_reach)
    return _people(parts, xy, confidence, label, limb_totals, params.min_parts)


def find_peaks(heatmaps: np.ndarray, threshold: float,
               max_per_channel: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4-neighbour maxima of ``(C, H, W)`` maps at or above ``threshold``.

    Returns the channel ``(K,)``, sub-cell ``(x, y)`` ``(K, 2)`` and map value ``(K,)``
    of every peak (only the ``max_per_channel`` highest of a channel, if given),
    ordered by channel, then row, then column.
    """
    c, h, w = heatmaps.shape
    padded = np.full((c, h + 2, w + 2), -np.inf, np.float32)
    padded[:, 1:-1, 1:-1] = heatmaps
    flat = padded.reshape(-1)
    # Only cells above the threshold can be peaks: compare those few with their neighbours.
    index = np.flatnonzero(flat >= threshold)
    around = flat[index[:, None] + np.array([-1, 0, 1, -(w + 2), w + 2])]   # left, centre, right, up, down
    left, centre, right, up, down = around.T
    is_peak = (centre > left) & (centre > up) & (centre >= right) & (centre >= down)
    index, around = index[is_peak], around[is_peak]
    channel, cell = np.divmod(index, (h + 2) * (w + 2))
    if max_per_channel is not None and len(index) > max_per_channel:
        by_value = np.lexsort((-around[:, 1], channel))            # each channel's peaks, highest first
        starts = np.searchsorted(channel[by_value], channel[by_value])
        keep = np.sort(by_value[np.arange(len(index)) - starts < max_per_channel])
        channel, cell, around = channel[keep], cell[keep], around[keep]
    y, x = np.divmod(cell, w + 2)
    log = np.log(np.maximum(around, 1e-12))
    log[np.isinf(around)] = np.nan      # off the map edge
    left, centre, right, up, down = log.T
    curvature_x, curvature_y = left - 2 * centre + right, up - 2 * centre + down
    offset_x = _vertex(left, centre, right, curvature_x, curvature_y)
    offset_y = _vertex(up, centre, down, curvature_y, curvature_x)
    xy = np.stack([x - 1 + offset_x, y - 1 + offset_y], axis=1).astype(np.float32)
    return channel, xy, around[:, 1]


def _vertex(before, centre, after, curvature, other_curvature) -> np.ndarray:
    """Sub-cell offset of the top of a log-parabola through (-1, before), (0, centre), (1, after).

    At the map edge one neighbour is missing (nan); a Gaussian peak is round, so the
    curvature across the other axis stands in for the missing one.  Without any
    usable curvature (a corner, a flat top) the offset is 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        both = 0.5 * (before - after) / curvature
        fallback = np.where(other_curvature < 0, other_curvature, np.nan)
        only_before = -(centre - before) / fallback - 0.5
        only_after = 0.5 - (after - centre) / fallback
    offset = np.select([curvature < 0, np.isnan(after), np.isnan(before)], [both, only_before, only_after], np.nan)
    return np.where(np.isfinite(offset), np.clip(offset, -0.5, 0.5), 0.0)


def _candidate_limbs(parts, xy, pafs, params: GroupingParams):
    """All joint pairs that the PAFs support: limb type, two peak indices, score."""
    counts = np.bincount(parts, minlength=NUM_PARTS)
    starts = np.cumsum(counts) - counts
    n_first, n_second = counts[_LIMB_ENDS[:, 0]], counts[_LIMB_ENDS[:, 1]]
    sizes = n_first * n_second
    limb = np.repeat(np.arange(NUM_LIMBS), sizes)
    offset = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    first = starts[_LIMB_ENDS[limb, 0]] + offset // n_second[limb]
    second = starts[_LIMB_ENDS[limb, 1]] + offset % n_second[limb]

    a, b = xy[first], xy[second]
    delta = b - a
    length = np.sqrt((delta * delta).sum(axis=1))
    unit = delta / np.maximum(length, 1e-6)[:, None]
    # The PAF at D evenly spaced points from a to b, nearest cell (channels 2k, 2k+1).
    t = np.linspace(0.0, 1.0, params.num_samples, dtype=np.float32)[:, None]
    _, h, w = pafs.shape
    x = np.clip(np.rint(a[:, 0] + t * delta[:, 0]), 0, w - 1).astype(np.intp)   # (D, M)
    y = np.clip(np.rint(a[:, 1] + t * delta[:, 1]), 0, h - 1).astype(np.intp)
    index = (2 * h * w) * limb + (y * w + x)
    flat = pafs.reshape(-1)
    projection = flat[index] * unit[:, 0] + flat[index + h * w] * unit[:, 1]  # (D, M)
    prior = np.minimum(0.5 * h / np.maximum(length, 1e-6) - 1.0, 0.0)
    score = projection.mean(axis=0) + prior
    agreeing = (projection > params.paf_sample_threshold).mean(axis=0)
    keep = (agreeing >= params.min_agreeing_fraction) & (score > 0)
    return limb[keep], first[keep], second[keep], score[keep]


def _assemble(parts, limb, first, second, score):
    """Greedy per-limb matching and assembly into groups, highest score first.

    Returns each peak's group ``(K,)`` (0..G-1; a peak no limb connects is a group of
    its own) and each group's total limb score ``(G,)``.
    """
    num_peaks = len(parts)
    group_of = list(range(num_peaks))
    members = [[p] for p in range(num_peaks)]
    part_bits = [1 << p for p in parts.tolist()]
    used = set()
    accepted, accepted_score = [], []
    order = np.argsort(-score, kind="stable")
    for k, p, q, s in zip(limb[order].tolist(), first[order].tolist(), second[order].tolist(),
                          score[order].tolist()):
        if (k, p) in used or (k, q) in used:
            continue
        used.add((k, p))
        used.add((k, q))
        gp, gq = group_of[p], group_of[q]
        if gp != gq:
            if part_bits[gp] & part_bits[gq]:
                continue    # joining would give someone two joints of one type
            if len(members[gp]) < len(members[gq]):
                gp, gq = gq, gp
            for peak in members[gq]:
                group_of[peak] = gp
            members[gp] += members[gq]
            part_bits[gp] |= part_bits[gq]
        accepted.append(p)
        accepted_score.append(s)
    _, label = np.unique(group_of, return_inverse=True)
    limb_totals = np.bincount(label[accepted], accepted_score, minlength=label.max() + 1)
    return label, limb_totals


def _skeleton_reach() -> np.ndarray:
    """``reach[i, j]``: the longest distance joints ``i`` and ``j`` can be apart, in body heights.

    The shortest path between them along the limbs, each limb at its typical length
    (:data:`ftpose.keypoints.LIMB_LENGTHS`).  A limb never looks longer than it is in a 2-D projection, so a real
    person's joints satisfy ``distance <= scale * reach`` for the person's height.
    """
    reach = np.full((NUM_PARTS, NUM_PARTS), np.inf)
    np.fill_diagonal(reach, 0.0)
    for (a, b), length in zip(LIMBS, LIMB_LENGTHS):
        reach[a, b] = reach[b, a] = length
    for k in range(NUM_PARTS):  # Floyd-Warshall
        reach = np.minimum(reach, reach[:, k, None] + reach[None, k, :])
    return reach


_REACH = _skeleton_reach()


def _merge_fragments(parts, xy, label, limb_totals, max_reach: float):
    """Merge groups that no limb joins but that fit together as one person.

    ``reach[i, j]`` bounds how far apart joint types ``i`` and ``j`` can be, per unit
    of body height, so ``distance / reach`` over a group's pairs of joints is a lower
    bound on its height.  Two groups holding no joint of the same type can merge
    when no pair of joints across them is further apart than ``max_reach`` times the
    larger of their two heights allows.  Allowed merges are made cheapest first, the
    cost being the mean of the smallest and the largest ``distance / reach`` across
    the two groups relative to that height, so groups that sit close together and
    stay within reach everywhere go first.  A second round raises every height to at
    least the median height of the image's groups, so that single joints, which have
    no height of their own, can merge too.  Returns the new labels and limb totals.
    """
    num_groups = len(limb_totals)
    if num_groups < 2:
        return label, limb_totals
    x, y = xy[:, 0], xy[:, 1]
    distance = np.sqrt(np.square(x[:, None] - x) + np.square(y[:, None] - y))
    reach = _REACH[parts[:, None], parts[None, :]]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = distance / reach          # nan for a joint with itself, inf for two of one type
    # farthest[g, h] / nearest[g, h]: the largest / smallest ratio between the joints of g and h
    order = np.argsort(label, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(label[order]) != 0])
    ratio = ratio[order][:, order]
    farthest = np.maximum.reduceat(np.maximum.reduceat(np.where(np.isnan(ratio), 0, ratio), starts, 0), starts, 1)
    nearest = np.minimum.reduceat(np.minimum.reduceat(np.where(np.isnan(ratio), np.inf, ratio), starts, 0), starts, 1)
    height = farthest.diagonal().copy()
    found = np.zeros((num_groups, NUM_PARTS), np.float32)
    found[label, parts] = 1.0
    overlap = found @ found.T > 0
    root = np.arange(num_groups)
    limb_totals = limb_totals.copy()
    median_height = np.median(height[height > 0]) if (height > 0).any() else 0.0
    columns = np.arange(num_groups)
    for fallback in (0.0, median_height):
        cost = _merge_cost(farthest, nearest, height, overlap, fallback, max_reach)
        merged_away = root != columns
        cost[merged_away] = cost[:, merged_away] = np.inf
        # Each row's cheapest merge, kept up to date so a step costs O(groups), not O(groups^2).
        best = cost.argmin(axis=1)
        best_cost = cost[columns, best]
        while True:
            a = int(np.argmin(best_cost))
            b = int(best[a])
            if not np.isfinite(best_cost[a]):
                break
            height[a] = max(height[a], height[b], farthest[a, b])
            farthest[a] = farthest[:, a] = np.maximum(farthest[a], farthest[b])
            nearest[a] = nearest[:, a] = np.minimum(nearest[a], nearest[b])
            overlap[a] = overlap[:, a] = overlap[a] | overlap[b]
            limb_totals[a] += limb_totals[b]
            root[root == b] = a
            cost[b] = cost[:, b] = np.inf
            row = _merge_cost(farthest[a:a + 1], nearest[a:a + 1], height, overlap[a:a + 1], fallback,
                              max_reach, height[a])[0]
            row[root != columns] = np.inf     # groups already merged away
            cost[a] = cost[:, a] = row
            stale = (best == a) | (best == b)
            stale[[a, b]] = True
            better = ~stale & ((row < best_cost) | ((row == best_cost) & (a < best)))
            best[better], best_cost[better] = a, row[better]
            best[stale] = cost[stale].argmin(axis=1)
            best_cost[stale] = cost[stale, best[stale]]
    kept, label = np.unique(root[label], return_inverse=True)
    return label, limb_totals[kept]


def _merge_cost(farthest, nearest, height, overlap, fallback, max_reach, row_height=None):
    """Cost of merging each group of the rows with every group; inf where not allowed."""
    row_height = height[:, None] if row_height is None else row_height
    scale = np.maximum(np.maximum(row_height, height[None, :]), fallback)
    with np.errstate(divide="ignore", invalid="ignore"):
        allowed = ~overlap & (scale > 0) & (farthest <= max_reach * scale)
        return np.where(allowed, (nearest + farthest) / (2 * scale), np.inf)


def _people(parts, xy, confidence, label, limb_totals, min_parts: int) -> People:
    """Gather each group's joints; score, filter and sort the people."""
    keypoints = np.zeros((len(limb_totals), NUM_PARTS, 3), np.float32)
    keypoints[label, parts, :2] = xy
    keypoints[label, parts, 2] = confidence
    keep = np.bincount(label, minlength=len(limb_totals)) >= min_parts
    keypoints, limb_totals = keypoints[keep], limb_totals[keep]
    scores = ((keypoints[..., 2].sum(axis=1) + limb_totals) / (NUM_PARTS + NUM_LIMBS)).astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    return People(keypoints[order], scores[order])
