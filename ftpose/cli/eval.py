"""``ftpose eval``: accuracy on COCO, MPII or PoseTrack, and the error analysis of Fig. 6."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ftpose.cli.options import calibration_option, calibration_photos, parse_scales
from ftpose.export import BACKENDS, BackendUnavailableError
from ftpose.files import InputError

DATASETS = ("coco", "mpii", "posetrack")
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
@click.option("--scales", multiple=True, callback=parse_scales, metavar="S[,S...]",
              help="Input heights relative to 368 px, e.g. 0.75,1,1.25,1.5.")
@click.option("--multi-scale", is_flag=True, help="The paper's multi-scale test (4 scales 0.25 apart).")
@click.option("--flip", is_flag=True, help="Also run mirrored images and average the maps.")
@click.option("--device", default="cpu", show_default=True, help="torch device for --model/--weights.")
@click.option("--batch-size", default=4, show_default=True, type=click.IntRange(min=1),
              help="Images of one size sent to the network together.")
@click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
              help="What runs the network for --model/--weights (see README, Speed).")
@calibration_option
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the network (default: one per core).")
@click.option("--save-results", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the predictions made with --model/--weights/--oracle (to rescore with --results).")
@click.option("--analyze", "analyze_dir", type=click.Path(file_okay=False, path_type=Path),
              help="COCO only: write the Ronchi & Perona error analysis (JSON + PR plots at OKS 0.5, 0.75).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metrics as one JSON object (name -> value; fractions, null where n/a).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the tables as markdown ('-' prints them).")
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

    try:
        run = _Evaluation(dataset, ann)
        if results is not None:
            run.load_results(results, layout)
        elif oracle:
            run.oracle()
        else:
            run.predict(images, model_name, weights, scales, multi_scale, flip, device, batch_size, backend,
                        threads, calibration_photos(calibration, [backend]))
        if save_results is not None:
            run.save_predictions(save_results)
        metrics = run.metrics()
        tables = run.tables(metrics, _row_label(model_name, weights, results, oracle))
        if analyze_dir is not None:
            tables.append(run.analyze(analyze_dir))
    except (InputError, BackendUnavailableError) as e:
        raise click.ClickException(str(e)) from None

    from ftpose.evaluation.report import render_markdown, render_text
    from ftpose.files import atomic_write, write_json

    click.echo(render_text(tables))
    if run.skipped:
        click.echo(f"warning: {run.skipped} image(s) could not be read and were scored as having no "
                   f"predictions", err=True)
    if json_path is not None:
        write_json(json_path, metrics, indent=1)
    if markdown_path is not None:
        if str(markdown_path) == "-":
            click.echo(render_markdown(tables), nl=False)
        else:
            with atomic_write(markdown_path, "w") as f:
                f.write(render_markdown(tables))
    if run.skipped:
        sys.exit(1)


def _row_label(model_name, weights, results, oracle) -> str:
    if results is not None:
        return Path(results).name
    if oracle:
        return "oracle"
    return Path(weights).name if weights is not None else model_name


class _Evaluation:
    """Ground truth of one protocol, the predictions to score, and the scoring."""

    def __init__(self, dataset: str, ann: Path):
        self.dataset, self.ann, self.skipped = dataset, ann, 0
        if dataset == "coco":
            from ftpose.data.coco import load_coco_annotations

            self.gt = load_coco_annotations(ann)
        elif dataset == "mpii":
            from ftpose.evaluation.mpii import load_ground_truth

            self.gt = load_ground_truth(ann)
        else:
            from ftpose.evaluation.posetrack import load_ground_truth

            self.gt = load_ground_truth(ann)
        self.predictions = None
        self.layout = None

    # -- sources of predictions ---------------------------------------------------------

    def load_results(self, path: Path, layout_name: str | None):
        from ftpose.keypoints import KEYPOINT_SETS

        layout = KEYPOINT_SETS[layout_name] if layout_name else None
        if self.dataset == "coco":
            from ftpose.evaluation.coco import load_coco_results

            if layout is not None and layout.name != "coco17":
                raise click.UsageError("COCO results are always in the COCO-17 layout")
            self.predictions = load_coco_results(path, self.gt)
        elif self.dataset == "mpii":
            from ftpose.evaluation.mpii import load_results

            self.predictions, self.layout = load_results(path, layout)
        else:
            from ftpose.evaluation.posetrack import load_results

            self.predictions, self.layout = load_results(path, layout)

    def oracle(self):
        """The decoder's output on maps rendered from the ground truth (no images read).

        MPII and PoseTrack files give no image sizes: their maps cover the annotations.
        """
        import numpy as np

        from ftpose.evaluation.oracle import oracle_people, oracle_results
        from ftpose.keypoints import MPII16, NETWORK, POSETRACK17, convert

        if self.dataset == "coco":
            self.predictions = oracle_results(self.gt)
            return
        if self.dataset == "mpii":
            annotated = [(image.image, image.keypoints, MPII16) for image in self.gt]
        else:
            annotated = [(frame.image, frame.keypoints, POSETRACK17) for s in self.gt for frame in s.frames]
        people_by_key = {}
        for key, keypoints, layout in annotated:
            height, width = (int(np.ceil(v)) + 16 for v in keypoints[..., 1::-1].reshape(-1, 2).max(0))
            people_by_key[key] = oracle_people(convert(keypoints, layout, NETWORK), height, width)
        self._set_network_predictions(people_by_key)

    def predict(self, images: Path, model_name, weights, scales, multi_scale, flip, device, batch_size,
                backend="torch", threads=None, calibration=None):
        from ftpose.evaluation.predictions import predict_images
        from ftpose.predictor import MULTI_SCALES, Predictor

        if threads:
            import torch

            torch.set_num_threads(threads)
        predictor = Predictor(model_name, weights=weights, device=device,
                              scales=MULTI_SCALES if multi_scale else (scales or (1.0,)), flip=flip,
                              batch_size=batch_size, backend=backend, calibration=calibration)

        def skip(error: InputError) -> None:
            click.echo(f"error: {error}", err=True)
            self.skipped += 1

        entries = [(key, images / name) for key, name in self._images()]
        people_by_key = predict_images(predictor, entries, batch_size, on_error=skip, progress=True)
        if self.dataset == "coco":
            self.predictions = [r for key, people in people_by_key.items() for r in people.coco_results(key)]
        else:
            self._set_network_predictions(people_by_key)

    def _set_network_predictions(self, people_by_key: dict):
        """MPII/PoseTrack predictions from decoded people (network layout); each joint is
        ranked by its person's score times its own confidence."""
        import numpy as np

        from ftpose.keypoints import NETWORK

        if self.dataset == "mpii":
            from ftpose.evaluation.mpii import PredictedPeople
        else:
            from ftpose.evaluation.posetrack import PredictedPeople
        self.layout = NETWORK
        self.predictions = {key: PredictedPeople(people.keypoints.astype(np.float64),
                                                 people.scores[:, None] * people.keypoints[..., 2])
                            for key, people in people_by_key.items()}

    def _images(self) -> list[tuple]:
        """(key the predictions are stored under, image file name) for every evaluated image."""
        if self.dataset == "coco":
            return [(i, self.gt.imgs[i]["file_name"]) for i in sorted(self.gt.getImgIds())]
        if self.dataset == "mpii":
            return [(image.image, image.image) for image in self.gt]
        return [(frame.image, frame.image) for sequence in self.gt for frame in sequence.frames]

    def save_predictions(self, path: Path):
        from ftpose.files import write_json

        if self.dataset == "coco":
            write_json(path, self.predictions)
            return
        records = []
        for key, people in self.predictions.items():
            for i, (keypoints, scores) in enumerate(zip(people.keypoints, people.scores)):
                record = {"image" if self.dataset == "mpii" else "image_id": key,
                          "keypoints": [round(float(v), 2) for v in keypoints.ravel()],
                          "keypoint_scores": [round(float(v), 4) for v in scores]}
                track_ids = getattr(people, "track_ids", None)
                if track_ids is not None:
                    record["track_id"] = int(track_ids[i])
                records.append(record)
        write_json(path, records)

    # -- scoring ---------------------------------------------------------------------------

    def metrics(self) -> dict:
        if self.dataset == "coco":
            from ftpose.evaluation.coco import evaluate_coco

            # pycocotools marks metrics without ground truth (e.g. no medium people) with -1
            return {k: (None if v < 0 else v) for k, v in evaluate_coco(self.gt, self.predictions).items()}
        if self.dataset == "mpii":
            from ftpose.evaluation.mpii import evaluate_mpii

            return evaluate_mpii(self.gt, self.predictions, self.layout)
        from ftpose.evaluation.posetrack import evaluate_posetrack

        return evaluate_posetrack(self.gt, self.predictions, self.layout)

    def tables(self, metrics: dict, label: str):
        from ftpose.evaluation.report import tables_for

        return tables_for(self.dataset, metrics, label)

    def analyze(self, out_dir: Path):
        from ftpose.evaluation.analysis import STAGE_LABELS, STAGES, analyze, write_analysis
        from ftpose.evaluation.report import Table

        if not self.predictions:
            raise click.ClickException("the error analysis needs at least one prediction")
        result = analyze(self.gt, self.predictions)
        for path in write_analysis(result, out_dir):
            click.echo(f"wrote {path}", err=True)
        rows = [(f"OKS {oks:g}", {STAGE_LABELS[s]: result.ap(s, oks) for s in STAGES})
                for oks in result.oks_thresholds]
        return Table("Error analysis (Ronchi & Perona 2017): AP after fixing each error type in turn",
                     tuple(STAGE_LABELS[s] for s in STAGES), rows)
