"""``ftpose bench``: the paper's Table 5 on this machine, backends side by side, stage by stage."""
from __future__ import annotations

from pathlib import Path

import click

from ftpose.cli.options import calibration_option, parse_input_size
from ftpose.export import BACKENDS
from ftpose.files import SAMPLE_PHOTO, InputError


def _names(ctx, param, value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise click.BadParameter("give at least one name")
    if param.name == "backends":
        unknown = [n for n in names if n not in BACKENDS]
        if unknown:
            raise click.BadParameter(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    return list(dict.fromkeys(names))


@click.command("bench")
@click.option("--models", default="ftnet,openpose", show_default=True, callback=_names, metavar="M[,M...]",
              help="Registered model names, weights files or network files (.xml, .onnx, .pb: timed in their "
                   "own runtime, as backend 'native'), compared in one run.")
@click.option("--input", "input_size", default="368x432", show_default=True, metavar="HxW",
              help="Network input for the latency table (the paper's 368x432).")
@click.option("--backend", "backends", default="torch", show_default=True, callback=_names, metavar="B[,B...]",
              help=f"Backends to compare: {', '.join(BACKENDS)}.")
@click.option("--source", type=click.Path(path_type=Path),
              help="Photo, folder of photos or video for the end-to-end run (default: the bundled sample photo).")
@click.option("--frames", default=10, show_default=True, type=click.IntRange(min=1),
              help="Photos or video frames timed end to end.")
@click.option("--runs", default=10, show_default=True, type=click.IntRange(min=1),
              help="Timed network runs per model and backend (after --warmup).")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0), help="Untimed runs first.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads (default: one per core).")
@click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda, cuda:N).")
@calibration_option
@click.option("--grouping-maps", type=click.Choice(["auto", "own", "teacher"]), default="auto", show_default=True,
              help="Maps grouped end to end: the network's own, or the trained teacher's of the same frame "
                   "(auto: own when the network is trained).")
@click.option("--memory/--no-memory", default=True, show_default=True,
              help="Measure each model and backend's peak memory in a fresh process.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every number as one JSON object.")
def command(models, input_size, backends, source, frames, runs, warmup, threads, device, calibration,
            grouping_maps, memory, json_path):
    """Speed of MODELS: network latency, grouping and the whole pipeline, per backend.

    \b
    Everything is measured in this one run with contenders interleaved (each round runs
    each model and backend once, in alternating order), so machine load hits all
    equally; figures are medians.  Networks keep random weights unless trained ones are
    given or shipped: latency does not depend on them.  Reports Table 5's columns
    (parameters, fp32 size, MACs, latency, FPS), achieved GMAC/s against this CPU's
    peak, peak memory, grouping time for 2 and 10 people, the end-to-end time of each
    stage (read, preprocess, network, merge, grouping, drawing), how far bf16/int8 maps
    are from fp32 ones, and the speed ratios between models and backends.
    """
    import torch

    from ftpose.bench import Bench, render
    from ftpose.files import write_json

    size = parse_input_size(input_size)
    if size[0] % 8 or size[1] % 8:
        raise click.BadParameter(f"{input_size!r}: height and width must be multiples of 8", param_hint="--input")
    if threads:
        torch.set_num_threads(threads)
    try:
        result = Bench(models, backends, size, torch.device(device), runs, warmup, calibration).run(
            source or SAMPLE_PHOTO, frames, grouping_maps, memory)
    except InputError as e:
        raise click.ClickException(str(e)) from None
    except RuntimeError as e:   # BackendUnavailableError, WeightsUnavailableError
        raise click.ClickException(str(e)) from None
    click.echo(render(result))
    if json_path is not None:
        write_json(json_path, result, indent=1)
        click.echo(f"wrote {json_path}", err=True)
