"""Tiny random networks whose maps are far from zero, for export and backend tests.

Fresh pose heads start from tiny Gaussians (maps near 1e-7; DEVELOPING's head
initialisation), which every backend reproduces exactly, so errors of export or int8
would go unseen.  He-initialised convolutions give maps of a visible size.
"""
from __future__ import annotations

import torch

from ftpose.models import create_model


def visible_network(name: str, **options) -> torch.nn.Module:
    """``create_model(name, **options)`` (seed 0) with every convolution He-initialised."""
    torch.manual_seed(0)
    model = create_model(name, **options)
    for conv in model.modules():
        if isinstance(conv, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    return model.eval()
