"""``ftpose maps``: pictures of every supervised stage's heatmaps and PAFs over photos."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ftpose.cli.options import load_predictor, model_option, parse_scales, weights_option
from ftpose.files import SAMPLE_PHOTO, InputError


def parse_parts(ctx, param, value) -> tuple[str, ...]:
    """Click callback for ``--parts a,b``: network part names, checked."""
    from ftpose.mapview import part_index

    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    for part in parts:
        try:
            part_index(part)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return parts


@click.command("maps")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path), metavar="[IMAGE]...")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the panels.")
@model_option
@weights_option
@click.option("--without-transfer", is_flag=True,
              help="Add rows for the same weights with the feature transfer removed (paper Fig. 1).")
@click.option("--compare-weights", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Add rows for another trained network (repeatable), e.g. one trained with transfer_from=none.")
@click.option("--parts", default="left_ankle,right_ankle", show_default=True, callback=parse_parts,
              help="Parts whose heatmaps get a column in the comparison sheet.")
@click.option("--scales", "scales", multiple=True, callback=parse_scales, metavar="S[,S...]",
              help="Input heights relative to 368 px (default 1); maps are averaged over them.")
@click.option("--flip", is_flag=True, help="Also run the mirrored image and average the maps.")
@click.option("--tile-side", default=320, show_default=True, type=click.IntRange(min=32),
              help="Longer side, in pixels, of each picture in the comparison sheet.")
@click.option("--format", "suffix", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="Image format of the panels (jpg: much smaller files).")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu, cuda.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the network (default: one per core).")
def command(inputs, out, model_name, weights, without_transfer, compare_weights, parts, scales, flip, tile_side,
            suffix, device, threads):
    """Draw the heatmaps and PAFs of every supervised stage for IMAGE files or folders.

    With no IMAGE the bundled sample photo is used.  For an image NAME, per stage
    (ftnet and ftnet-light: before-refinement, final; one-stage networks: final):

    \b
      OUT/NAME.STAGE.heatmaps.png  all parts merged: left parts red to yellow,
                                   right parts cyan to blue, nose magenta, neck green
      OUT/NAME.STAGE.parts.png     each part's heatmap
      OUT/NAME.STAGE.pafs.png      PAFs: hue = direction (key in the corner),
                                   brightness = magnitude
      OUT/NAME.compare.png         rows = stages (and the --without-transfer and
                                   --compare-weights networks' stages), columns =
                                   people, all parts, each of --parts, PAFs

    The maps are the eager PyTorch network's.  Unreadable inputs are reported and
    skipped; the exit code is then 1.
    """
    from ftpose import mapview
    from ftpose.cli.predict import UNTRAINED_BANNER
    from ftpose.files import read_image, write_image
    from ftpose.models import without_transfer as remove_transfer
    from ftpose.outputs import Outputs, check_writable
    from ftpose.predictor import Predictor
    from ftpose.sources import expand_inputs
    from ftpose.visualize import draw_banner

    sources, errors = expand_inputs(inputs or [SAMPLE_PHOTO])
    for error in errors:
        click.echo(f"error: {error}", err=True)
    outputs = Outputs(sources, out)
    try:   # before the compute
        check_writable(out)
    except InputError as e:
        raise click.ClickException(str(e)) from None
    if threads:
        import torch

        torch.set_num_threads(threads)
    settings = {"device": device, "scales": scales or (1.0,), "flip": flip}
    predictor = load_predictor(model_name, weights, **settings)
    compare = []
    if without_transfer:
        try:
            compare.append(("no transfer", Predictor(remove_transfer(predictor.network), **settings)))
        except (ValueError, AttributeError):
            name = getattr(predictor.network, "model_name", model_name)
            raise click.UsageError(f"--without-transfer: {name} has no feature transfer to remove") from None
    compare += [(path.stem, load_predictor(model_name, path, **settings)) for path in compare_weights]

    failed, done, written = len(errors), 0, 0
    for source in sources:
        try:
            if source.is_video:
                raise InputError(source.path, "is a video; maps takes images (use predict --save-maps for videos)")
            image = read_image(source.path)
            for name, panel in mapview.render(predictor, image, compare, parts, tile_side).items():
                if not predictor.trained:
                    draw_banner(panel, UNTRAINED_BANNER)
                write_image(outputs.path(source, f".{name}.{suffix}"), panel)
                written += 1
            done += 1
        except InputError as e:
            failed += 1
            click.echo(f"error: {e}", err=True)
        except OSError as e:
            failed += 1
            click.echo(f"error: {out}: cannot write outputs ({e.strerror or e})", err=True)
    click.echo(f"{done} image(s), {written} panel(s) in {out}"
               + (f"; {failed} input(s) failed" if failed else ""), err=True)
    if failed:
        sys.exit(1)
