"""COCO keypoint error analysis after Ronchi and Perona (ICCV 2017), the paper's Fig. 6.

Every detection that matches a ground-truth person at OKS >= 0.1 has each of that
person's annotated keypoints classified by its keypoint similarity ``ks`` (the OKS term
of one keypoint) to every candidate location in the image:

- **good**: closest to the right joint of the right person, ``ks >= 0.85``;
- **jitter**: closest to the right joint, ``0.5 <= ks < 0.85``;
- **inversion**: closest to the left/right mirror joint of the same person, ``ks >= 0.5``;
- **swap**: closest to a joint (either side) of another person, ``ks >= 0.5``;
- **miss**: no candidate within ``ks >= 0.5``.

Each error type is then "fixed" in turn, cumulatively, and the detections re-scored
with pycocotools: a miss moves to ``ks = 0.5`` of the right joint, a jittered keypoint
to ``ks = 0.85``, an inverted or swapped one to the right joint at the similarity it had
to the wrong one.  Then detections are re-ranked by the best OKS they reach (with a
soft suppression of duplicates); then unmatched detections (background false
positives) and finally unmatched people (false negatives) are ignored.  The area
between successive precision/recall curves is what each error type costs.

Differences from the coco-analyze tool: the "all" area range is COCO's (coco-analyze
leaves out people under 32x32 px), so the first curve's AP is exactly the standard AP;
fixed keypoints land at exactly the stated ``ks`` under pycocotools' OKS.
"""
from __future__ import annotations

import contextlib
import copy
import io
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ftpose.data.coco import load_coco_annotations
from ftpose.evaluation.coco import load_coco_results, run_cocoeval
from ftpose.keypoints import COCO17

KEYPOINT_ERRORS = ("miss", "swap", "inversion", "jitter")  # the order of Fig. 6
STAGES = ("original",) + KEYPOINT_ERRORS + ("score", "background_fp", "false_negative")
STAGE_LABELS = {"original": "Original", "miss": "w/o Miss", "swap": "w/o Swap", "inversion": "w/o Inversion",
                "jitter": "w/o Jitter", "score": "Opt. Score", "background_fp": "w/o Bkg. FP",
                "false_negative": "w/o FN"}
LOCALISATION_OKS = 0.1     # detections matched at this OKS are analysed for keypoint errors
JITTER_KS = (0.5, 0.85)    # ks bounds of a jittered keypoint
PLOT_OKS = (0.5, 0.75)     # Fig. 6 (a) and (b)
SIGMAS = np.array(COCO17.sigmas)
_FLIP = COCO17.flip_permutation


def keypoint_similarity(points: np.ndarray, gt: np.ndarray, area: float) -> np.ndarray:
    """Per-keypoint OKS terms of ``points (..., 17, 2)`` against one person ``gt (17, 3)``.

    The same expression pycocotools averages into OKS; -1 where ``gt`` is unlabelled.
    """
    squared = np.sum((np.asarray(points, np.float64)[..., :2] - gt[:, :2]) ** 2, axis=-1)
    ks = np.exp(-squared / (2 * SIGMAS) ** 2 / (area + np.spacing(1)) / 2)
    return np.where(gt[:, 2] > 0, ks, -1.0)


def distance_for_similarity(ks, area: float) -> np.ndarray:
    """Offset in pixels at which a keypoint has similarity ``ks`` (inverse of the above)."""
    ks = np.clip(np.asarray(ks, np.float64), np.spacing(1), 1.0)
    return 2 * SIGMAS * np.sqrt(-2.0 * np.log(ks) * (area + np.spacing(1)))


@dataclass
class KeypointErrors:
    """Classification of one matched detection's keypoints against its ground truth."""

    result_index: int
    gt_id: int
    category: np.ndarray   # (17,) one of "good", KEYPOINT_ERRORS, or "" where gt is unlabelled
    fixed: np.ndarray      # (17, 2) the position each keypoint takes once its error is fixed


@dataclass
class ErrorAnalysis:
    """Precision/recall curves and AP per stage and OKS threshold, and error counts."""

    oks_thresholds: tuple[float, ...]
    recall: np.ndarray                              # (101,) pycocotools' recall points
    precision: dict[str, np.ndarray]                # stage -> (T, 101), -1 where undefined
    keypoint_errors: dict[str, int]                 # category -> number of keypoints
    analysed_detections: int
    background_false_positives: dict[float, int]    # per threshold, after all corrections
    false_negatives: dict[float, int]
    details: list[KeypointErrors] = field(default_factory=list, repr=False)

    def ap(self, stage: str, oks: float) -> float | None:
        """AP of one curve; None when undefined (no person left to find, e.g. all ignored)."""
        t = self.oks_thresholds.index(oks)
        curve = self.precision[stage][t]
        valid = curve > -1
        return float(curve[valid].mean()) if valid.any() else None

    def to_dict(self) -> dict:
        """JSON-ready numbers: AP per stage and threshold, error counts, PR curves."""
        return {
            "oks_thresholds": list(self.oks_thresholds),
            "stages": {s: STAGE_LABELS[s] for s in STAGES},
            "ap": {f"{oks:g}": {s: self.ap(s, oks) for s in STAGES} for oks in self.oks_thresholds},
            "keypoint_errors": dict(self.keypoint_errors),
            "analysed_detections": self.analysed_detections,
            "background_false_positives": {f"{k:g}": v for k, v in self.background_false_positives.items()},
            "false_negatives": {f"{k:g}": v for k, v in self.false_negatives.items()},
            "recall": self.recall.round(4).tolist(),
            "precision": {f"{oks:g}": {s: np.round(self.precision[s][t], 4).tolist() for s in STAGES}
                          for t, oks in enumerate(self.oks_thresholds)},
        }


def _all_area(ev) -> list[dict]:
    """``evalImgs`` entries of the area range "all" (pycocotools puts them first)."""
    area = ev.params.areaRng[0]
    return [e for e in ev.evalImgs if e is not None and e["aRng"] == area]


def _people(gt, image_id) -> list[dict]:
    return gt.imgToAnns.get(image_id, [])


def classify_keypoints(gt, results: list[dict]) -> list[KeypointErrors]:
    """Keypoint errors of every detection matched at OKS >= 0.1 to a person with keypoints."""
    ev = run_cocoeval(gt, results, oks_thresholds=[LOCALISATION_OKS])
    out = []
    for e in _all_area(ev):
        for d_index, (dt_id, gt_id) in enumerate(zip(e["dtIds"], e["dtMatches"][0])):
            if gt_id == 0 or e["dtIgnore"][0][d_index]:
                continue
            matched = gt.anns[int(gt_id)]
            if matched["num_keypoints"] == 0:
                continue
            out.append(_classify(int(dt_id) - 1, results[int(dt_id) - 1], matched, _people(gt, e["image_id"])))
    return out


def _classify(index: int, result: dict, matched: dict, people: list[dict]) -> KeypointErrors:
    points = np.asarray(result["keypoints"], np.float64).reshape(-1, 3)[:, :2]
    own = np.asarray(matched["keypoints"], np.float64).reshape(-1, 3)
    others = [p for p in people if p["id"] != matched["id"]]
    # Candidates in tie-breaking order: the right person, other people, the right
    # person mirrored, other people mirrored.
    candidates = [own] + [np.asarray(p["keypoints"], np.float64).reshape(-1, 3) for p in others]
    areas = [matched["area"]] + [p["area"] for p in others]
    sims = [keypoint_similarity(points, c, a) for c, a in zip(candidates, areas)]
    sims += [keypoint_similarity(points, c[_FLIP], a) for c, a in zip(candidates, areas)]
    sims = np.stack(sims)
    best, source = sims.max(0), sims.argmax(0)
    mirrored_self = len(candidates)
    low, high = JITTER_KS
    labelled = own[:, 2] > 0
    category = np.full(len(points), "", dtype=object)
    category[labelled & (best < low)] = "miss"
    hit = labelled & (best >= low)
    category[hit & (source == 0) & (best >= high)] = "good"
    category[hit & (source == 0) & (best < high)] = "jitter"
    category[hit & (source == mirrored_self)] = "inversion"
    category[hit & (source != 0) & (source != mirrored_self)] = "swap"

    target_ks = np.select([category == "miss", category == "jitter"], [low, high], np.clip(best, 0, 1))
    fixed = points.copy()
    to_fix = labelled & (category != "good")
    fixed[to_fix, 0] = own[to_fix, 0] + distance_for_similarity(target_ks, matched["area"])[to_fix]
    fixed[to_fix, 1] = own[to_fix, 1]
    return KeypointErrors(index, matched["id"], category, fixed)


def _apply_fixes(results: list[dict], errors: list[KeypointErrors], kinds) -> list[dict]:
    out = copy.deepcopy(results)
    for err in errors:
        mask = np.isin(err.category, list(kinds))
        if not mask.any():
            continue
        kp = np.asarray(out[err.result_index]["keypoints"], np.float64).reshape(-1, 3)
        kp[mask, :2] = err.fixed[mask]
        out[err.result_index]["keypoints"] = kp.ravel().tolist()
    return out


def optimal_scores(gt, results: list[dict]) -> list[dict]:
    """Detections re-scored by the best OKS each reaches, duplicates softly suppressed.

    The best OKS comes from pycocotools; within an image, detections are taken in order
    of that score and each one lowers the scores of the remaining ones by
    ``exp(-oks^2 / 0.5)`` of their mutual OKS (Gaussian soft-NMS).
    """
    most = max(Counter(r["image_id"] for r in results).values(), default=1)
    ev = run_cocoeval(gt, results, max_people=most)
    out = copy.deepcopy(results)
    by_image: dict = {}
    for i, r in enumerate(results):
        by_image.setdefault(r["image_id"], []).append(i)
    for image_id, indices in by_image.items():
        people = ev._gts[image_id, 1]
        ious = ev.ious.get((image_id, 1), [])
        # pycocotools' rows: this image's detections sorted by score (stable)
        order = [indices[k] for k in np.argsort([-results[i]["score"] for i in indices], kind="mergesort")]
        usable = np.array([not p["ignore"] for p in people], bool)
        best = np.zeros(len(indices))
        if len(ious) and usable.any():
            best_by_row = np.asarray(ious)[:, usable].max(1)
            best = {i: b for i, b in zip(order, best_by_row)}
            best = np.array([best[i] for i in indices])
        scores = dict(zip(indices, best))
        remaining = list(indices)
        while remaining:
            top = max(remaining, key=lambda i: scores[i])
            remaining.remove(top)
            for i in remaining:
                scores[i] *= np.exp(-_detection_similarity(results[top], results[i]) ** 2 / 0.5)
        for i in indices:
            out[i]["score"] = float(scores[i])
    return out


def _detection_similarity(a: dict, b: dict) -> float:
    """OKS between two detections, over joints both have, with the mean of their extents as area."""
    ka = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
    kb = np.asarray(b["keypoints"], np.float64).reshape(-1, 3)
    both = np.any(ka != 0, 1) & np.any(kb != 0, 1)
    if not both.any():
        return 0.0

    def extent(k):
        lo, hi = k[both, :2].min(0), k[both, :2].max(0)
        return float(np.prod(hi - lo))

    reference = np.concatenate([ka[:, :2], both[:, None].astype(np.float64)], 1)
    ks = keypoint_similarity(kb[:, :2], reference, 0.5 * (extent(ka) + extent(kb)))
    return float(ks[both].mean())


def _curves(ev) -> np.ndarray:
    """(T, 101) precision of area "all", the single maxDets setting."""
    return ev.eval["precision"][:, :, 0, 0, -1]


def analyze(ann, results, oks_thresholds=PLOT_OKS) -> ErrorAnalysis:
    """Run the whole analysis of COCO keypoint ``results`` (a path or records) against ``ann``."""
    gt = load_coco_annotations(ann)
    results = load_coco_results(results, gt)
    thresholds = tuple(float(t) for t in oks_thresholds)
    if not results:
        raise ValueError("error analysis needs at least one detection")
    errors = classify_keypoints(gt, results)

    precision, fixed = {}, results
    ev = run_cocoeval(gt, results, oks_thresholds=thresholds)
    precision["original"] = _curves(ev).copy()
    recall = ev.params.recThrs
    for k, kind in enumerate(KEYPOINT_ERRORS):
        fixed = _apply_fixes(results, errors, KEYPOINT_ERRORS[:k + 1])
        precision[kind] = _curves(run_cocoeval(gt, fixed, oks_thresholds=thresholds)).copy()
    rescored = optimal_scores(gt, fixed)
    ev = run_cocoeval(gt, rescored, oks_thresholds=thresholds)
    precision["score"] = _curves(ev).copy()

    background_fp, false_neg = {}, {}
    precision["background_fp"] = np.empty_like(precision["score"])
    precision["false_negative"] = np.empty_like(precision["score"])
    entries = _all_area(ev)
    original_gt_ignore = [e["gtIgnore"].copy() for e in entries]
    for t, oks in enumerate(thresholds):
        unmatched_dt = 0
        for e in entries:
            unmatched = (e["dtMatches"][t] == 0) & ~e["dtIgnore"][t].astype(bool)
            e["dtIgnore"][t] = e["dtIgnore"][t].astype(bool) | unmatched
            unmatched_dt += int(unmatched.sum())
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate()
        precision["background_fp"][t] = _curves(ev)[t]
        unmatched_gt = 0
        for e, ignore in zip(entries, original_gt_ignore):
            missed = (e["gtMatches"][t] == 0) & (ignore == 0)
            e["gtIgnore"] = np.where(missed, 1, ignore)
            unmatched_gt += int(missed.sum())
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate()
        precision["false_negative"][t] = _curves(ev)[t]
        for e, ignore in zip(entries, original_gt_ignore):
            e["gtIgnore"] = ignore
        background_fp[oks], false_neg[oks] = unmatched_dt, unmatched_gt

    counts = {c: 0 for c in ("good",) + KEYPOINT_ERRORS}
    for err in errors:
        for c in err.category:
            if c:
                counts[c] += 1
    return ErrorAnalysis(thresholds, np.asarray(recall), precision, counts, len(errors),
                         background_fp, false_neg, errors)


# Fill colours of the areas gained by fixing each stage (Fig. 6 uses one per error type).
STAGE_COLOURS = {"original": "#ffffff", "miss": "#f2e394", "swap": "#f2ae72", "inversion": "#d96459",
                 "jitter": "#8c4646", "score": "#4f82bd", "background_fp": "#8063a3",
                 "false_negative": "#2e8b57"}


def plot_analysis(analysis: ErrorAnalysis, oks: float, title: str | None = None):
    """A Fig. 6 panel: stacked precision/recall curves after fixing each error type."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    t = analysis.oks_thresholds.index(oks)
    recall = analysis.recall
    figure = Figure(figsize=(8, 5.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_axes([0.09, 0.11, 0.56, 0.8])
    handles, previous = [], None
    for stage in STAGES:
        curve = np.clip(analysis.precision[stage][t], 0, None)
        axes.plot(recall, curve, color="black", linewidth=1.2)
        if previous is not None:
            axes.fill_between(recall, previous, curve, where=curve >= previous, color=STAGE_COLOURS[stage],
                              interpolate=True)
        previous = curve
        ap = analysis.ap(stage, oks)
        handles.append(Patch(facecolor=STAGE_COLOURS[stage], edgecolor="black",
                             label=f"{STAGE_LABELS[stage]:<14} {'n/a' if ap is None else f'{ap:.3f}'}"))
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.grid(True, alpha=0.4)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title(title or f"OKS = {oks:g}")
    figure.legend(handles=handles[::-1], loc="center left", bbox_to_anchor=(0.67, 0.5),
                  prop={"family": "monospace", "size": 10}, title="AP after fixing", frameon=True)
    return figure


def write_analysis(analysis: ErrorAnalysis, out_dir, prefix: str = "error_analysis") -> list:
    """Write ``<prefix>.json`` and one ``<prefix>_oks<NN>.png`` per threshold into ``out_dir``."""
    from pathlib import Path

    from ftpose.files import atomic_write, write_json

    out_dir = Path(out_dir)
    written = [out_dir / f"{prefix}.json"]
    write_json(written[0], analysis.to_dict(), indent=1)
    for oks in analysis.oks_thresholds:
        path = out_dir / f"{prefix}_oks{round(100 * oks):02d}.png"
        with atomic_write(path) as f:
            plot_analysis(analysis, oks).savefig(f, format="png")
        written.append(path)
    return written
