"""Periodic validation: COCO keypoint AP of the model being trained.

Runs the model through the normal inference path (:class:`ftpose.Predictor`, single
scale) and scores it with pycocotools (:func:`ftpose.evaluation.coco.evaluate_coco`),
so a validation number means exactly what ``ftpose eval`` would report.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ftpose.data.coco import load_coco_annotations
from ftpose.evaluation.coco import evaluate_coco
from ftpose.evaluation.predictions import predict_images


def coco_validation(model: torch.nn.Module, annotations, images, device="cpu", max_images: int = 0) -> dict[str, float]:
    """COCO AP of ``model`` on the images of ``annotations`` (the first ``max_images`` by id, 0 = all)."""
    from ftpose.predictor import Predictor

    coco = load_coco_annotations(annotations)
    ids = sorted(coco.getImgIds())
    if max_images:
        ids = ids[:max_images]
    was_training = model.training
    predictor = Predictor(model, device=device)
    try:
        people = predict_images(predictor, [(i, Path(images) / coco.imgs[i]["file_name"]) for i in ids], batch_size=1)
    finally:
        model.train(was_training)
    results = [r for image_id, found in people.items() for r in found.coco_results(image_id)]
    return evaluate_coco(coco, results, ids)
