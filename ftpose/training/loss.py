"""The masked L2 loss of the paper's eq. 3-4, summed over every supervised stage.

Per stage and branch: ``sum_p W(p) * ||pred(p) - target(p)||^2``, where ``W`` is 0 on
ignored regions (crowds, unannotated people) and on the channels of parts and limbs
the sample's dataset never annotates.  The sum is halved and averaged over the batch,
the normalisation of Caffe's EuclideanLoss that the paper's learning rate (4e-5)
was tuned with; with it the loss of each stage is what the paper optimised.
"""
from __future__ import annotations

import torch


def pose_loss(outputs, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss (a scalar tensor) and its detached parts, per stage and branch, for logging.

    ``outputs`` is the model's list of ``(heatmaps, pafs)`` per stage; ``batch`` holds
    ``heatmaps``, ``pafs``, ``weight`` ``(B, 1, h, w)``, ``heatmap_weight`` ``(B, 19)`` and
    ``paf_weight`` ``(B, 38)``.  Computed in float32 whatever the autocast precision.
    """
    batch_size = batch["heatmaps"].shape[0]
    cell_weight = batch["weight"].float()
    heatmap_weight = cell_weight * batch["heatmap_weight"].float()[:, :, None, None]
    paf_weight = cell_weight * batch["paf_weight"].float()[:, :, None, None]
    total = torch.zeros((), device=cell_weight.device)
    parts: dict[str, torch.Tensor] = {}
    for stage, (heatmaps, pafs) in enumerate(outputs):
        heatmap_loss = (heatmap_weight * (heatmaps.float() - batch["heatmaps"]) ** 2).sum() / (2 * batch_size)
        paf_loss = (paf_weight * (pafs.float() - batch["pafs"]) ** 2).sum() / (2 * batch_size)
        total = total + heatmap_loss + paf_loss
        parts[f"stage{stage}_heatmap"] = heatmap_loss.detach()
        parts[f"stage{stage}_paf"] = paf_loss.detach()
    return total, parts
