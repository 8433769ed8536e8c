"""``ftpose export``: a network to ONNX, verified against PyTorch, optionally int8."""
from __future__ import annotations

from pathlib import Path

import click

from ftpose.cli.options import parse_input_size
from ftpose.sources import read_photos
from ftpose.files import InputError


@click.command("export")
@click.argument("source", metavar="MODEL|WEIGHTS")
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="Output format.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default: MODEL.onnx, or the weights' name with .onnx, in the current folder).")
@click.option("--dynamic/--static", default=True, show_default=True,
              help="Free batch, height and width, or only the --input size (some TensorRT setups prefer it).")
@click.option("--input", "input_size", default="368x432", show_default=True, metavar="HxW",
              help="Traced input size (multiples of 8); with --static the only size accepted.")
@click.option("--opset", default=18, show_default=True, type=click.IntRange(min=17), help="ONNX opset.")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="A model option when MODEL is a name, repeatable (e.g. -o width_mult=0.5).")
@click.option("--verify", "verify_photos", multiple=True, type=click.Path(path_type=Path), metavar="PHOTO",
              help="Photo(s) to verify the export on, repeatable (default: the bundled sample photo).")
@click.option("--int8", is_flag=True,
              help="Also write OUT's stem + .int8.onnx: int8 weights and activations, calibrated on --calibration.")
@click.option("--calibration", "calibration", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Photos or folders of photos for --int8 calibration (default: the bundled sample photo; "
                   "a few dozen photos like yours calibrate better).")
@click.option("--calibration-method", type=click.Choice(["minmax", "percentile", "entropy"]), default="minmax",
              show_default=True, help="How --int8 sets activation ranges.")
def command(source, fmt, out, dynamic, input_size, opset, options, verify_photos, int8, calibration,
            calibration_method):
    """Export MODEL (a registered name: its shipped weights if it has them, else random
    weights; always random with --option) or WEIGHTS (a .safetensors file or training
    checkpoint) to ONNX.

    The file takes 'image' (B,3,H,W) float32 BGR pixels/256 - 0.5 and returns the final
    'heatmaps' and 'pafs'.  It is written only after ONNX Runtime and PyTorch agree
    on real photos to 1e-4 (the differences are printed).
    """
    from ftpose.export.onnx import ExportError, export_onnx
    from ftpose.models.resolve import untrained_message

    size = parse_input_size(input_size)
    network, trained = _load(source, options)
    if not trained:
        click.echo(f"warning: {untrained_message(source)}", err=True)
    out = out or Path((Path(source).stem if trained else source) + ".onnx")
    try:
        photos = read_photos(verify_photos) if verify_photos else None
        report = export_onnx(network, out, size, dynamic=dynamic, opset=opset, photos=photos)
    except (ExportError, InputError) as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    for check in report.checks:
        click.echo(f"  {check}", err=True)
    click.echo(f"wrote {out} (opset {opset}, {'dynamic' if dynamic else f'static {size[0]}x{size[1]}'} input; "
               f"ONNX Runtime matches PyTorch to {report.max_abs_diff:.1e})", err=True)
    if int8:
        _write_int8(out, calibration, calibration_method, size)


def _load(source: str, options):
    """``(network, trained)`` from a model source (a registered name, or a weights or network file)."""
    from ftpose import models
    from ftpose.models.foreign import OpenPoseLayoutNetwork
    from ftpose.models.resolve import resolve_model

    try:
        network, trained = resolve_model(source, options=models.parse_options(options))
    except InputError as e:
        raise click.ClickException(str(e)) from None
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e)) from None
    if isinstance(network, OpenPoseLayoutNetwork):
        raise click.UsageError(f"{source} is a network file already; export takes a model name or weights")
    return network.eval(), trained


def _write_int8(out: Path, calibration, method: str, size: tuple[int, int]) -> None:
    from ftpose.export.quantize import calibration_inputs, quantize_int8

    try:
        if calibration:
            photos = read_photos(calibration)
        else:
            from ftpose.files import SAMPLE_PHOTO, read_image

            click.echo("warning: calibrating int8 on the bundled sample photo only; pass --calibration with "
                       "photos like yours", err=True)
            photos = [read_image(SAMPLE_PHOTO)]
    except InputError as e:
        raise click.ClickException(str(e)) from None
    target = out.with_name(out.stem + ".int8.onnx")
    # the histogram methods need inputs of one size: photos fitted into --input's
    inputs = calibration_inputs(photos, size=None if method == "minmax" else size)
    quantize_int8(out, target, inputs, method)
    click.echo(f"wrote {target} (int8, {method} calibration on {len(photos)} photo(s))", err=True)
