"""``ftpose eval``: accuracy on COCO, MPII or PoseTrack, and the error analysis of Fig. 6."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ftpose.cli.options import calibration_photos, output_option, predictor_options
from ftpose.evaluation.protocols import PROTOCOLS
from ftpose.export import BackendUnavailableError
from ftpose.files import InputError

DATASETS = tuple(PROTOCOLS)
LAYOUTS = ("coco17", "openpose18", "mpii16", "posetrack18", "posetrack17")


@click.command("eval")
@click.option("--dataset", type=click.Choice(DATASETS), required=True, help="Evaluation protocol.")
@click.option("--ann", type=click.Path(exists=True, path_type=Path), required=True,
              help="Ground truth: COCO keypoints json; MPII json list or .mat; PoseTrack json or folder.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Folder the annotations' image names are relative to (needed to run a model).")
@click.option("--model", "model_name",
              help="Run this registered model (its shipped weights, if any), or a weights, checkpoint or "
                   "network file (.safetensors, .pt, .xml, .onnx, .pb).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Run the network in these weights (.safetensors) or training checkpoint.")
@click.option("--results", type=click.Path(exists=True, path_type=Path),
              help="Score an existing results file (or PoseTrack folder) from any system.")
@click.option("--oracle", is_flag=True, help="Score the decoder on maps rendered from the ground truth.")
@click.option("--layout", type=click.Choice(LAYOUTS),
              help="Keypoint layout of --results records when their length is ambiguous "
                   "(default: COCO-17 for 51 values).")
@predictor_options
@output_option("--save-results", "save_results",
               "Also write the predictions made with --model/--weights/--oracle (to rescore with --results).")
@output_option("--analyze", "analyze_dir",
               "COCO only: write the Ronchi & Perona error analysis (JSON + PR plots at OKS 0.5, 0.75).", folder=True)
@output_option("--json", "json_path", "Write the metrics as one JSON object (name -> value; fractions, null where n/a).")
@output_option("--markdown", "markdown_path", "Write the tables as markdown ('-' prints them).")
def command(dataset, ann, images, model_name, weights, results, oracle, layout, scales, multi_scale, flip,
            device, batch_size, backend, calibration, threads, save_results, analyze_dir, json_path, markdown_path):
    """Score poses against ground truth with the protocol of the paper's tables.

    COCO: AP/AR through pycocotools (Table 3).  MPII: per-part AP with PCKh@0.5
    matching (Table 2).  PoseTrack 2017/2018: per-part AP, plus MOTA, MOTP, precision
    and recall when the results carry track ids (Table 4).  Predictions come from a model
    (--model/--weights, reading --images), from --results, or from --oracle.
    Exit code 1 when an image could not be read (the rest is still scored).
    """
    sources = [name for name, given in (("--model", model_name), ("--weights", weights),
                                        ("--results", results), ("--oracle", oracle)) if given]
    if len(sources) > 1 and sources != ["--model", "--weights"]:
        raise click.UsageError(f"give one source of predictions, not {' and '.join(sources)}")
    if not sources:
        raise click.UsageError("give --model, --weights, --results or --oracle")
    if analyze_dir is not None and dataset != "coco":
        raise click.UsageError("--analyze is the COCO (OKS) error analysis; use --dataset coco")
    running_model = model_name is not None or weights is not None
    if running_model and images is None:
        raise click.UsageError("running a model needs --images")
    if not running_model and (scales or multi_scale or flip):
        raise click.UsageError("--scales, --multi-scale and --flip apply to --model/--weights only")
    if calibration and not running_model:
        raise click.UsageError("--calibration applies to --model/--weights with an int8 --backend")
    if scales and multi_scale:
        raise click.UsageError("give either --scales or --multi-scale, not both")
    if layout is not None and results is None:
        raise click.UsageError("--layout describes --results records")

    from ftpose.evaluation.protocols import open_protocol
    from ftpose.keypoints import KEYPOINT_SETS

    skipped = 0
    try:
        protocol = open_protocol(dataset, ann)
        if results is not None:
            try:
                protocol.load_results(results, KEYPOINT_SETS[layout] if layout else None)
            except InputError:
                raise
            except ValueError as e:   # a --layout the protocol does not take
                raise click.UsageError(str(e)) from None
        elif oracle:
            protocol.oracle()
        else:
            skipped = _predict(protocol, images, model_name, weights, scales, multi_scale, flip, device,
                               batch_size, backend, threads, calibration_photos(calibration, [backend]))
        if save_results is not None:
            protocol.save_predictions(save_results)
        metrics = protocol.metrics()
        tables = protocol.tables(metrics, _row_label(model_name, weights, results, oracle))
        if analyze_dir is not None:
            if not protocol.predictions:
                raise click.ClickException("the error analysis needs at least one prediction")
            table, written = protocol.analyze(analyze_dir)
            for path in written:
                click.echo(f"wrote {path}", err=True)
            tables.append(table)
    except (InputError, BackendUnavailableError) as e:
        raise click.ClickException(str(e)) from None

    from ftpose.evaluation.report import render_markdown, render_text
    from ftpose.files import atomic_write, write_json

    click.echo(render_text(tables))
    if skipped:
        click.echo(f"warning: {skipped} image(s) could not be read and were scored as having no "
                   f"predictions", err=True)
    if json_path is not None:
        write_json(json_path, metrics, indent=1)
    if markdown_path is not None:
        if str(markdown_path) == "-":
            click.echo(render_markdown(tables), nl=False)
        else:
            with atomic_write(markdown_path, "w") as f:
                f.write(render_markdown(tables))
    if skipped:
        sys.exit(1)


def _row_label(model_name, weights, results, oracle) -> str:
    if results is not None:
        return Path(results).name
    if oracle:
        return "oracle"
    return Path(weights).name if weights is not None else model_name


def _predict(protocol, images: Path, model_name, weights, scales, multi_scale, flip, device, batch_size,
             backend, threads, calibration) -> int:
    """Fill ``protocol``'s predictions with a model's people on its images; the number of unreadable images."""
    from ftpose.evaluation.predictions import predict_images
    from ftpose.predictor import MULTI_SCALES, Predictor

    if threads:
        import torch

        torch.set_num_threads(threads)
    predictor = Predictor(model_name, weights=weights, device=device,
                          scales=MULTI_SCALES if multi_scale else (scales or (1.0,)), flip=flip,
                          batch_size=batch_size, backend=backend, calibration=calibration)
    skipped = []

    def skip(error: InputError) -> None:
        click.echo(f"error: {error}", err=True)
        skipped.append(error)

    entries = [(key, images / name) for key, name in protocol.images()]
    protocol.set_people(predict_images(predictor, entries, batch_size, on_error=skip, progress=True))
    return len(skipped)
