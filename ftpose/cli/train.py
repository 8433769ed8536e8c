"""``ftpose train``: train a registered model on COCO, MPII and PoseTrack data."""
from __future__ import annotations

import warnings
from pathlib import Path

import click

from ftpose.files import InputError


@click.command("train")
@click.option("--model", help="registered model name (ftpose info lists them); default ftnet")
@click.option("--init", type=click.Path(exists=True, dir_okay=False),
              help="start from these weights (.safetensors or a checkpoint), e.g. a COCO model for PoseTrack")
@click.option("--data", "data", multiple=True, metavar="KIND:ANNOTATIONS:IMAGES[:WEIGHT]",
              help="training data, repeatable; KIND is coco, mpii or posetrack. WEIGHT scales how often "
                   "its people are drawn per epoch (default 1).")
@click.option("--val", metavar="coco:ANNOTATIONS:IMAGES", help="validation set for periodic COCO AP")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="run folder: checkpoints, config.toml, metrics.csv, validation.csv, samples/")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file with any settings (see configs/); command-line options override it")
@click.option("--steps", type=int, help="total optimiser steps")
@click.option("--batch-size", type=int, help="global batch size, split over the processes of a torchrun launch")
@click.option("--lr", type=float, help="base learning rate")
@click.option("--workers", type=int, help="data-loading processes per training process")
@click.option("--device", help="auto, cpu, cuda or cuda:N")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="autocast precision on GPU")
@click.option("--seed", type=int, help="seed of the data order, augmentation and initial weights")
@click.option("--dump-samples", type=int, metavar="N",
              help="write the first N augmented samples with heatmaps and PAFs drawn over them to OUT/samples/")
@click.option("--set", "assignments", multiple=True, metavar="SECTION.KEY=VALUE",
              help="override any config setting, e.g. --set optim.name=adam --set augment.max_rotation=30")
@click.option("--resume", is_flag=True,
              help="continue the run in OUT from its newest checkpoint, with its config.toml (options given here "
                   "override it, e.g. a larger --steps)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def command(model, init, data, val, out_dir, config_file, steps, batch_size, lr, workers, device, precision, seed,
            dump_samples, assignments, resume, quiet):
    """Train a pose network (paper §4.3: person-centric 368x368 crops, masked L2 on every stage).

    \b
    Example, COCO on one GPU:
      ftpose train --model ftnet --config configs/coco.toml \\
        --data coco:coco/annotations/person_keypoints_train2017.json:coco/train2017 \\
        --val coco:coco/annotations/person_keypoints_val2017.json:coco/val2017 --out runs/ftnet
    Several GPUs: torchrun --nproc_per_node 8 -m ftpose train ... (same options).
    """
    from ftpose.training.config import command_line_overrides, load_config
    from ftpose.training.distributed import is_main_process
    from ftpose.training.engine import train

    if not is_main_process():
        warnings.simplefilter("ignore")  # rank 0 shows them
    try:
        overrides = command_line_overrides(assignments, {
            "model": model, "init": init, "val": val, "steps": steps, "batch_size": batch_size, "optim.lr": lr,
            "workers": workers, "device": device, "precision": precision, "seed": seed, "dump_samples": dump_samples,
        }, data)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--set") from None
    saved = out_dir / "config.toml"
    if resume and config_file is None and saved.is_file():
        config_file = saved
    run_training(lambda: train(load_config(config_file, overrides), out_dir, resume=resume, progress=not quiet),
                 out_dir)


def run_training(run, out_dir: Path) -> None:
    """Run ``train`` or ``distill`` (``run()``): their one-line errors as the command's (said by
    rank 0 only under torchrun, exit 1), then the summary line."""
    from ftpose.training.distributed import is_main_process
    from ftpose.training.engine import NonFiniteError

    try:
        summary = run()
    except (InputError, ValueError, NonFiniteError) as e:
        if not is_main_process():  # under torchrun every rank meets the same error: rank 0 says it
            raise SystemExit(1) from None
        raise click.ClickException(str(e)) from None
    if summary:
        click.echo(f"step {summary['step']}: loss {summary['loss']:.4g}; checkpoints in {out_dir}")
