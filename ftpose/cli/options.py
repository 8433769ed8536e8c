"""Command-line option parsing shared by several subcommands."""
from __future__ import annotations

from pathlib import Path

import click

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

    from ftpose.export import BackendUnavailableError
    from ftpose.models.resolve import untrained_message
    from ftpose.predictor import Predictor, UntrainedNetworkWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedNetworkWarning)
        try:
            predictor = Predictor(model_name, weights=weights, **settings)
        except (InputError, BackendUnavailableError) as e:
            raise click.ClickException(str(e)) from None
        except ValueError as e:   # an unknown model name
            raise click.UsageError(str(e)) from None
    if not predictor.trained:
        click.echo(f"warning: {untrained_message(predictor.network)}", err=True)
    return predictor
