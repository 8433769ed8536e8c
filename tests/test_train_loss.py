"""The masked L2 of eq. 3-4: known answers, masks per cell and per channel, every stage counted."""
from __future__ import annotations

import torch

from ftpose.training.loss import pose_loss


def _batch(b=2, h=4, w=5):
    return {
        "heatmaps": torch.zeros(b, 19, h, w), "pafs": torch.zeros(b, 38, h, w),
        "weight": torch.ones(b, 1, h, w), "heatmap_weight": torch.ones(b, 19), "paf_weight": torch.ones(b, 38),
    }


def test_known_value_is_half_the_sum_of_squares_per_sample():
    batch = _batch()
    heatmaps, pafs = torch.zeros(2, 19, 4, 5), torch.zeros(2, 38, 4, 5)
    heatmaps[0, 3, 1, 2] = 2.0      # error 2 -> 4
    pafs[1, 7, 0, 0] = -1.0         # error 1 -> 1
    loss, parts = pose_loss([(heatmaps, pafs)], batch)
    assert loss.item() == (4 + 1) / (2 * 2)
    assert parts["stage0_heatmap"].item() == 4 / 4 and parts["stage0_paf"].item() == 1 / 4


def test_every_stage_is_supervised():
    batch = _batch()
    one = (torch.ones(2, 19, 4, 5), torch.zeros(2, 38, 4, 5))
    single, _ = pose_loss([one], batch)
    double, parts = pose_loss([one, one], batch)
    assert double.item() == 2 * single.item() and set(parts) == {
        "stage0_heatmap", "stage0_paf", "stage1_heatmap", "stage1_paf"}


def test_ignored_cells_and_unannotated_channels_get_no_loss_and_no_gradient():
    batch = _batch()
    batch["weight"][0, 0, :, :2] = 0.0          # an ignored region of sample 0
    batch["heatmap_weight"][1, 0] = 0.0         # sample 1's dataset has no nose
    batch["paf_weight"][1, 24:26] = 0.0         # ... nor the neck-nose limb
    heatmaps = torch.zeros(2, 19, 4, 5, requires_grad=True)
    pafs = torch.zeros(2, 38, 4, 5, requires_grad=True)
    with torch.no_grad():
        heatmaps[0, :, :, :2] = 5.0
        heatmaps[1, 0] = 5.0
        pafs[1, 24:26] = 5.0
    loss, _ = pose_loss([(heatmaps, pafs)], batch)
    assert loss.item() == 0.0
    loss = pose_loss([(heatmaps + 1, pafs)], batch)[0]
    loss.backward()
    assert heatmaps.grad[0, :, :, :2].abs().sum() == 0 and heatmaps.grad[1, 0].abs().sum() == 0
    assert heatmaps.grad[0, :, :, 2:].abs().sum() > 0


def test_fractional_weights_scale_the_loss():
    batch = _batch(b=1)
    batch["weight"][0, 0, 0, 0] = 0.25          # a quarter-ignored cell at a mask edge
    heatmaps = torch.zeros(1, 19, 4, 5)
    heatmaps[0, 0, 0, 0] = 2.0
    loss, _ = pose_loss([(heatmaps, torch.zeros(1, 38, 4, 5))], batch)
    assert loss.item() == 0.25 * 4 / 2
