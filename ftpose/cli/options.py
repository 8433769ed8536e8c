"""Command-line option parsing shared by several subcommands."""
from __future__ import annotations

from pathlib import Path

import click

from ftpose.export import BACKENDS
from ftpose.files import InputError

model_option = click.option(
    "--model", "model_name",
    help="Registered model name, or a weights, checkpoint or network file (.safetensors, .pt, .xml, .onnx, "
         ".pb); default: the most accurate model whose weights ship (ftnet-light today). Ignored with --weights, "
         "whose file names its model.")
weights_option = click.option(
    "--weights", type=click.Path(path_type=Path),
    help="Weights (.safetensors) or training checkpoint. Default: the shipped weights of --model, if any.")
calibration_option = click.option(
    "--calibration", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
    help="Photos or folders of photos (repeatable) that calibrate the int8 backends; photos like yours give "
         "the best int8 maps (default: the bundled sample photo).")


def parse_input_size(text: str) -> tuple[int, int]:
    """``"368x432"`` -> ``(368, 432)`` (height x width), for ``--input`` options."""
    height, sep, width = text.lower().partition("x")
    try:
        size = (int(height), int(width))
    except ValueError:
        size = None
    if not sep or size is None or min(size) <= 0:
        raise click.BadParameter(f"{text!r} is not HEIGHTxWIDTH (e.g. 368x432)", param_hint="--input")
    return size


def parse_scales(ctx, param, values) -> tuple[float, ...]:
    """Click callback for a repeatable ``--scales S[,S...]``: all values, flattened, each positive."""
    scales = []
    for value in values:
        for part in value.split(","):
            try:
                scale = float(part)
            except ValueError:
                raise click.BadParameter(f"{part!r} is not a number") from None
            if scale <= 0:
                raise click.BadParameter(f"{part!r} is not a positive scale")
            scales.append(scale)
    return tuple(scales)


_PREDICTOR_OPTIONS = (
    click.option("--scales", "scales", multiple=True, callback=parse_scales, metavar="S[,S...]",
                 help="Input heights relative to 368 px, e.g. --scales 0.75,1,1.25,1.5 (default 1)."),
    click.option("--multi-scale", is_flag=True,
                 help="The paper's multi-scale test: scales 0.75,1,1.25,1.5, maps averaged."),
    click.option("--flip", is_flag=True, help="Also run the mirrored image and average the maps."),
    click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu, cuda, cuda:1."),
    click.option("--batch-size", default=4, show_default=True, type=click.IntRange(min=1),
                 help="Images (or video frames) of one size sent to the network together."),
    click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
                 help="What runs the network: PyTorch fp32 or bf16, ONNX Runtime fp32 or int8, OpenVINO fp32, "
                      "bf16 or int8, TensorRT (see README, Speed)."),
    calibration_option,
    click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the network (default: one per core)."),
)


def output_option(flag: str, dest: str, help: str, folder: bool = False):
    """An option naming a file (or, with ``folder``, a folder) that the command writes."""
    kind = click.Path(file_okay=False, path_type=Path) if folder else click.Path(dir_okay=False, path_type=Path)
    return click.option(flag, dest, type=kind, help=help)


def predictor_options(command):
    """Decorator: the Predictor's options that predict and eval share (scales, multi-scale, flip,
    device, batch size, backend, calibration, threads), in that order."""
    for option in reversed(_PREDICTOR_OPTIONS):
        command = option(command)
    return command


def calibration_photos(paths, backends) -> list | None:
    """The photos of ``--calibration`` (None: the backend's default), refused for backends that are not int8."""
    from ftpose.export import backend_spec

    if not paths:
        return None
    if not any(backend_spec(b).precision == "int8" for b in backends):
        raise click.UsageError("--calibration is for the int8 backends (e.g. --backend onnxruntime-int8)")
    from ftpose.sources import read_photos

    return read_photos(paths)


def load_predictor(model_name, weights=None, **settings):
    """A :class:`~ftpose.predictor.Predictor`, its problems as click errors; warns on stderr when it is untrained."""
    import warnings

    from ftpose.cli import user_errors
    from ftpose.models.resolve import untrained_message
    from ftpose.predictor import Predictor, UntrainedNetworkWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedNetworkWarning)
        try:
            predictor = Predictor(model_name, weights=weights, **settings)
        except user_errors():
            raise   # one line from the command group (with --verbose, the traceback too)
        except ValueError as e:   # an unknown model name
            raise click.UsageError(str(e)) from None
    if not predictor.trained:
        click.echo(f"warning: {untrained_message(predictor.network)}", err=True)
    return predictor
