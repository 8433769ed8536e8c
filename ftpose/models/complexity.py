"""Parameter and multiply-accumulate (MAC) counts: the paper's Table 5 and Fig. 5.

MACs are counted by running the model under :class:`torch.utils.flop_counter.FlopCounterMode`
(which counts convolutions and matrix products as 2 FLOPs per multiply-accumulate) and
halving.  Bias additions, ReLUs and pooling are not counted, as is usual; the paper's
"GFLOPs" are MACs in this sense.  Counting needs only shapes, so :func:`summarize` runs
on the ``meta`` device when given a model built there, and then costs no compute.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

BYTES_PER_FP32 = 4


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameters_by_module(model: nn.Module, depth: int = 1) -> dict[str, int]:
    """Parameters of every submodule ``depth`` levels down that has any (dotted names), in model order."""
    counts = {name: count_parameters(module) for name, module in model.named_modules()
              if name and name.count(".") == depth - 1}
    return {name: n for name, n in counts.items() if n}


def count_macs(model: nn.Module, input_size: tuple[int, int], depth: int = 1) -> tuple[int, dict[str, int]]:
    """MACs of one forward pass on a ``(1, 3, H, W)`` input: the total and per submodule.

    Per-module counts are summed from the leaf modules, so they are right even for
    modules whose layers the parent calls directly rather than through ``forward``.
    """
    device = next(model.parameters()).device
    x = torch.zeros(1, 3, *input_size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    root = type(model).__name__
    leaves = {name for name, module in model.named_modules() if name and not any(module.children())}
    by_module = dict.fromkeys(parameters_by_module(model, depth), 0)
    for name, flops in counter.get_flop_counts().items():
        name = name.removeprefix(root + ".")
        if name in leaves:
            key = ".".join(name.split(".")[:depth])
            if key in by_module:
                by_module[key] += sum(flops.values()) // 2
    return counter.get_total_flops() // 2, by_module


def summarize(model: nn.Module, input_size: tuple[int, int] = (368, 432), depth: int = 1) -> dict[str, Any]:
    """Everything ``ftpose info`` reports, as a JSON-ready dict.

    Keys: ``model``, ``options``, ``input`` ([H, W]), ``params``, ``size_mb`` (fp32
    weights, 10^6 bytes), ``macs`` (one forward pass at ``input``), ``modules`` (name
    -> params) and ``module_macs`` (name -> MACs) at ``depth``.
    """
    params = count_parameters(model)
    macs, module_macs = count_macs(model, input_size, depth)
    return {
        "model": getattr(model, "model_name", type(model).__name__),
        "options": dict(getattr(model, "model_options", {})),
        "input": list(input_size),
        "params": params,
        "size_mb": round(params * BYTES_PER_FP32 / 1e6, 3),
        "macs": macs,
        "modules": parameters_by_module(model, depth),
        "module_macs": module_macs,
    }
