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


def read_photos(paths) -> list:
    """BGR photos from files and folders (searched recursively); unreadable files are errors."""
    from ftpose.files import read_image
    from ftpose.sources import expand_inputs

    sources, errors = expand_inputs(paths)
    if errors:
        raise errors[0]
    photos = [read_image(s.path) for s in sources if not s.is_video]
    if not photos:
        raise InputError(paths[0], "no photos found")
    return photos


def calibration_photos(paths, backends) -> list | None:
    """The photos of ``--calibration`` (None: the backend's default), refused for backends that are not int8."""
    from ftpose.export import backend_spec

    if not paths:
        return None
    if not any(backend_spec(b).precision == "int8" for b in backends):
        raise click.UsageError("--calibration is for the int8 backends (e.g. --backend onnxruntime-int8)")
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
