"""``ftpose info``: parameters, fp32 size and MACs of a model, in total and per module."""
from __future__ import annotations

import json

import click

from ftpose.cli.options import parse_input_size


@click.command("info")
@click.argument("model_name", metavar="MODEL")
@click.option("--input", "input_size", default="368x432", show_default=True, metavar="HxW",
              help="Input height x width for the MAC count (multiples of 8).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="A model option, repeatable (e.g. -o transfer_from=conv3 -o refinement=false).")
@click.option("--depth", default=1, show_default=True, type=click.IntRange(1, 4),
              help="Module nesting depth of the per-module breakdown.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def command(model_name, input_size, options, depth, as_json):
    """Parameters, fp32 size and multiply-accumulates (MACs) of MODEL.

    The paper's Table 5 and Fig. 5 for any registered model and option set.  MACs are
    counted on the `meta` device (shapes only, no compute); ImageNet initialisation is
    irrelevant to the counts and is never downloaded here.
    """
    import torch

    from ftpose.models import create_model, parse_options
    from ftpose.models.complexity import summarize

    size = parse_input_size(input_size)
    try:
        parsed = parse_options(options)
        parsed.pop("pretrained_backbone", None)
        with torch.device("meta"):
            model = create_model(model_name, **parsed)
        if next(model.parameters(), None) is None:
            raise ValueError(f"model {model_name!r} has no torch layers to count (it runs outside torch, "
                             "e.g. the teacher in OpenCV)")
        summary = summarize(model, size, depth)
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e)) from None
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(_table(summary))


def _table(summary: dict) -> str:
    options = ", ".join(f"{k}={v}" for k, v in summary["options"].items() if k != "pretrained_backbone")
    height, width = summary["input"]
    rows = [(name, params, summary["module_macs"][name]) for name, params in summary["modules"].items()]
    rows.append(("total", summary["params"], summary["macs"]))
    name_width = max(len(r[0]) for r in rows)
    lines = [f"{summary['model']} ({options})",
             f"{'module':<{name_width}}  {'params':>12}  {'share':>6}  {f'GMAC @ {height}x{width}':>16}"]
    for name, params, macs in rows:
        if name == "total":
            lines.append("-" * len(lines[1]))
        share = 100.0 * params / summary["params"] if summary["params"] else 0.0
        lines.append(f"{name:<{name_width}}  {params:>12,}  {share:>5.1f}%  {macs / 1e9:>16.2f}")
    lines.append(f"fp32 size: {summary['size_mb']:.1f} MB (10^6 bytes)")
    return "\n".join(lines)
