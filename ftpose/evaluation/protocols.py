"""One object per evaluation protocol: its ground truth, images, predictions in and out, metrics and tables.

``ftpose eval`` never branches on the dataset: it opens the protocol
(:func:`open_protocol`), fills its predictions from a results file, from the oracle or
from people a model found on :meth:`Protocol.images`, and asks it for metrics and
tables.  A protocol's scoring is in its own module (``coco``, ``mpii``, ``posetrack``);
this module only gives them one shape.
"""
from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

import numpy as np

from ftpose.keypoints import MPII16, POSETRACK17, KeypointSet


class Protocol:
    """Ground truth of one protocol and the predictions to score against it.

    ``predictions`` is what the protocol's ``evaluate_*`` takes (COCO: result records;
    MPII and PoseTrack: image key -> ``PredictedPeople``, in ``layout``).
    """

    name = ""

    def __init__(self, ann: Path):
        self.ann = ann
        self.gt = self._load_ground_truth(ann)
        self.predictions = None
        self.layout: KeypointSet | None = None

    def images(self) -> list[tuple[Hashable, str]]:
        """``(key the predictions are stored under, image file name)`` for every evaluated image."""
        raise NotImplementedError

    def load_results(self, path: Path, layout: KeypointSet | None = None) -> None:
        """Predictions from a results file (``layout`` when its records' length is ambiguous)."""
        raise NotImplementedError

    def set_people(self, people_by_key: dict) -> None:
        """Predictions from decoded :class:`~ftpose.grouping.People` (network layout, image pixels) per image key."""
        raise NotImplementedError

    def oracle(self) -> None:
        """Predictions decoded from maps rendered from the ground truth (no images read)."""
        raise NotImplementedError

    def save_predictions(self, path: Path) -> None:
        """Write the predictions as a results file that :meth:`load_results` reads back."""
        raise NotImplementedError

    def metrics(self) -> dict:
        """Metric name -> float, or None where the metric does not apply."""
        raise NotImplementedError

    def tables(self, metrics: dict, label: str) -> list:
        """The paper's tables (``ftpose.evaluation.report.Table``) for ``metrics``, in a row called ``label``."""
        from ftpose.evaluation.report import tables_for

        return tables_for(self.name, metrics, label)

    def _load_ground_truth(self, ann: Path):
        raise NotImplementedError


class CocoProtocol(Protocol):
    """COCO keypoints: OKS AP/AR through pycocotools (the paper's Table 3)."""

    name = "coco"

    def _load_ground_truth(self, ann):
        from ftpose.data.coco import load_coco_annotations

        return load_coco_annotations(ann)

    def images(self):
        return [(i, self.gt.imgs[i]["file_name"]) for i in sorted(self.gt.getImgIds())]

    def load_results(self, path, layout=None):
        from ftpose.evaluation.coco import load_coco_results

        if layout is not None and layout.name != "coco17":
            raise ValueError("COCO results are always in the COCO-17 layout")
        self.predictions = load_coco_results(path, self.gt)

    def set_people(self, people_by_key):
        self.predictions = [r for key, people in people_by_key.items() for r in people.coco_results(key)]

    def oracle(self):
        from ftpose.evaluation.oracle import oracle_results

        self.predictions = oracle_results(self.gt)

    def save_predictions(self, path):
        from ftpose.files import write_json

        write_json(path, self.predictions)

    def metrics(self):
        from ftpose.evaluation.coco import evaluate_coco

        # pycocotools marks metrics without ground truth (e.g. no medium people) with -1
        return {k: (None if v < 0 else v) for k, v in evaluate_coco(self.gt, self.predictions).items()}

    def analyze(self, out_dir: Path):
        """The error analysis of the paper's Fig. 6: ``(table, files written)``."""
        from ftpose.evaluation.analysis import STAGE_LABELS, STAGES, analyze, write_analysis
        from ftpose.evaluation.report import Table

        result = analyze(self.gt, self.predictions)
        written = write_analysis(result, out_dir)
        rows = [(f"OKS {oks:g}", {STAGE_LABELS[s]: result.ap(s, oks) for s in STAGES})
                for oks in result.oks_thresholds]
        return Table("Error analysis (Ronchi & Perona 2017): AP after fixing each error type in turn",
                     tuple(STAGE_LABELS[s] for s in STAGES), rows), written


class _PckhProtocol(Protocol):
    """MPII and PoseTrack: PCKh@0.5 matching, per-part AP; predictions are ``PredictedPeople`` per image key."""

    image_key = ""        # the results-file field naming an image
    annotated_layout: KeypointSet

    def _module(self):
        raise NotImplementedError

    def _annotated(self) -> list[tuple[Hashable, np.ndarray]]:
        """``(image key, annotated keypoints in annotated_layout)`` for every image."""
        raise NotImplementedError

    def _load_ground_truth(self, ann):
        return self._module().load_ground_truth(ann)

    def images(self):
        return [(key, key) for key, _ in self._annotated()]

    def load_results(self, path, layout=None):
        self.predictions, self.layout = self._module().load_results(path, layout)

    def set_people(self, people_by_key):
        """Each joint is ranked by its person's score times its own confidence."""
        from ftpose.keypoints import NETWORK

        predicted = self._module().PredictedPeople
        self.layout = NETWORK
        self.predictions = {key: predicted(people.keypoints.astype(np.float64),
                                           people.scores[:, None] * people.keypoints[..., 2])
                            for key, people in people_by_key.items()}

    def oracle(self):
        """The files give no image sizes: the maps cover the annotations."""
        from ftpose.evaluation.oracle import oracle_people
        from ftpose.keypoints import NETWORK, convert

        people_by_key = {}
        for key, keypoints in self._annotated():
            height, width = (int(np.ceil(v)) + 16 for v in keypoints[..., 1::-1].reshape(-1, 2).max(0))
            people_by_key[key] = oracle_people(convert(keypoints, self.annotated_layout, NETWORK), height, width)
        self.set_people(people_by_key)

    def save_predictions(self, path):
        from ftpose.files import write_json

        records = []
        for key, people in self.predictions.items():
            track_ids = getattr(people, "track_ids", None)
            for i, (keypoints, scores) in enumerate(zip(people.keypoints, people.scores)):
                record = {self.image_key: key, "keypoints": [round(float(v), 2) for v in keypoints.ravel()],
                          "keypoint_scores": [round(float(v), 4) for v in scores]}
                if track_ids is not None:
                    record["track_id"] = int(track_ids[i])
                records.append(record)
        write_json(path, records)


class MpiiProtocol(_PckhProtocol):
    """MPII multi-person: per-part AP with PCKh@0.5 matching (the paper's Table 2)."""

    name = "mpii"
    image_key = "image"
    annotated_layout = MPII16

    def _module(self):
        from ftpose.evaluation import mpii

        return mpii

    def _annotated(self):
        return [(image.image, image.keypoints) for image in self.gt]

    def metrics(self):
        return self._module().evaluate_mpii(self.gt, self.predictions, self.layout)


class PoseTrackProtocol(_PckhProtocol):
    """PoseTrack 2017/2018: per-part AP, and MOTA/MOTP/precision/recall with track ids (the paper's Table 4)."""

    name = "posetrack"
    image_key = "image_id"
    annotated_layout = POSETRACK17

    def _module(self):
        from ftpose.evaluation import posetrack

        return posetrack

    def _annotated(self):
        return [(frame.image, frame.keypoints) for sequence in self.gt for frame in sequence.frames]

    def metrics(self):
        return self._module().evaluate_posetrack(self.gt, self.predictions, self.layout)


PROTOCOLS = {protocol.name: protocol for protocol in (CocoProtocol, MpiiProtocol, PoseTrackProtocol)}
"""Protocol name (``ftpose eval --dataset``) -> its class."""


def open_protocol(name: str, ann: Path) -> Protocol:
    """The protocol ``name`` (one of :data:`PROTOCOLS`) with the ground truth in ``ann``."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {name!r}; available: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name](ann)
