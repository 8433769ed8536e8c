"""COCO keypoint evaluation through pycocotools, the reference implementation.

This module only loads and validates annotation and result files and calls
``COCOeval``; it never reimplements OKS or AP.
"""
from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ftpose.data.coco import load_coco_annotations
from ftpose.files import InputError, check_record, read_json
from ftpose.keypoints import COCO17

METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
MAX_PEOPLE_PER_IMAGE = 20  # COCO keypoints' maxDets


def load_coco_results(results, gt: COCO, source=None) -> list[dict]:
    """Validated copies of COCO keypoint result records (a path or a list of dicts).

    Each record needs ``image_id`` (an image of ``gt``), 51 ``keypoints`` values and a
    numeric ``score``; ``category_id`` defaults to 1.  Problems raise :class:`InputError`
    naming ``source`` (the path, when ``results`` is one) and the record.
    """
    if not isinstance(results, list):
        source = source or results
        results = read_json(results)
    source = source or "<results>"
    if not isinstance(results, list):
        raise InputError(source, "not a COCO results file (top level is not a list of records)")
    image_ids = set(gt.getImgIds())
    expected = 3 * len(COCO17)
    out = []
    for i, r in enumerate(results):
        check_record(source, f"record {i}", r, ("image_id", "keypoints", "score"))
        if r["image_id"] not in image_ids:
            raise InputError(source, f"record {i} refers to image_id {r['image_id']}, which the annotations lack")
        try:
            keypoints = [float(v) for v in r["keypoints"]]
            score = float(r["score"])
        except (TypeError, ValueError):
            raise InputError(source, f"record {i} has non-numeric keypoints or score") from None
        if len(keypoints) != expected:
            raise InputError(source, f"record {i} has {len(keypoints)} keypoint values, expected {expected}")
        if not np.isfinite(score) or not np.all(np.isfinite(keypoints)):
            raise InputError(source, f"record {i} has a NaN or infinite value")
        out.append({**r, "category_id": r.get("category_id", 1), "keypoints": keypoints, "score": score})
    return out


def run_cocoeval(ann, results: list[dict], image_ids=None, oks_thresholds=None,
                 max_people: int = MAX_PEOPLE_PER_IMAGE) -> COCOeval:
    """An evaluated and accumulated pycocotools ``COCOeval`` (keypoints), silenced.

    ``results`` must be non-empty; result ``i`` gets annotation id ``i + 1`` (pycocotools'
    numbering), which is how callers map ``evalImgs`` back to their records.
    """
    gt = load_coco_annotations(ann)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(copy.deepcopy(list(results)))
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.imgIds = sorted(gt.getImgIds()) if image_ids is None else sorted(image_ids)
        ev.params.maxDets = [max_people]
        if oks_thresholds is not None:
            ev.params.iouThrs = np.asarray(oks_thresholds, np.float64)
        ev.evaluate()
        ev.accumulate()
    return ev


def evaluate_coco(ann, results: list[dict], image_ids=None) -> dict[str, float]:
    """Score COCO keypoint ``results`` against ground truth ``ann`` with pycocotools.

    ``results`` are COCO result records (``image_id``, ``category_id``, ``keypoints``
    with 51 values, ``score``).  ``image_ids`` defaults to every image of ``ann``, so
    images with no annotated people still count their false positives; at most the 20
    highest-scoring people per image count, and ``iscrowd`` regions and people without
    keypoints neither need a match nor penalise one.  Returns the ten standard metrics
    as floats in 0..1 (an empty result list scores 0).
    """
    if not results:
        return {m: 0.0 for m in METRICS}
    ev = run_cocoeval(ann, results, image_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.summarize()
    # pycocotools reports -1 where a metric has no ground truth (e.g. no medium people)
    return {m: float(v) for m, v in zip(METRICS, ev.stats)}
