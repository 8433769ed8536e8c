"""``ftpose predict``: people in images, folders and videos -> overlays and COCO JSON."""
from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from ftpose.cli.options import (calibration_option, calibration_photos, load_predictor, model_option, parse_scales,
                                weights_option)
from ftpose.export import BACKENDS
from ftpose.files import MAX_PIXELS, SAMPLE_PHOTO, InputError, PartialInputWarning
from ftpose.outputs import Outputs, check_writable, meta_path, results_lock, write_results

UNTRAINED_BANNER = "UNTRAINED NETWORK (random weights): these poses are meaningless"


@click.command("predict")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path), metavar="[INPUT]...")
@model_option
@weights_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for overlays (and maps); the JSON goes to OUT/predictions.json unless --json.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="COCO keypoint results file; OUT/predictions.json by default when --out is given.")
@click.option("--scales", "scales", multiple=True, callback=parse_scales, metavar="S[,S...]",
              help="Input heights relative to 368 px, e.g. --scales 0.75,1,1.25,1.5 (default 1).")
@click.option("--multi-scale", is_flag=True,
              help="The paper's multi-scale test: scales 0.75,1,1.25,1.5, maps averaged.")
@click.option("--flip", is_flag=True, help="Also run the mirrored image and average the maps.")
@click.option("--save-maps", is_flag=True, help="Write the merged heatmaps and PAFs (.npz) to OUT.")
@click.option("--render-maps", is_flag=True,
              help="Also draw the merged heatmaps and PAFs of each image as PNG panels in OUT (see `ftpose maps`).")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu, cuda, cuda:1.")
@click.option("--batch-size", default=4, show_default=True, type=click.IntRange(min=1),
              help="Images or video frames of one size sent to the network together.")
@click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
              help="What runs the network: PyTorch fp32 or bf16, ONNX Runtime fp32 or int8, OpenVINO fp32, "
                   "bf16 or int8, TensorRT (see README, Speed).")
@calibration_option
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the network (default: one per core).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=MAX_PIXELS, show_default=True,
              help="Refuse images with more pixels than this (read from the file's header, before decoding).")
@click.option("--allow-partial", is_flag=True,
              help="Exit 0 even when an input was only partly readable (corrupt JPEG data, a video cut short); "
                   "it is reported either way.")
def command(inputs, model_name, weights, out, json_path, scales, multi_scale, flip, save_maps, render_maps,
            device, batch_size, backend, calibration, threads, max_pixels, allow_partial):
    """Estimate the poses of everyone in INPUT images, folders or videos.

    Folders are searched recursively (sorted); videos are read frame by frame.  With
    no INPUT the bundled sample photo is used.

    \b
    Outputs:
      OUT/NAME.jpg        overlay of an image (NAME keeps sub-folders of a folder)
      OUT/NAME.mp4        annotated copy of a video
      OUT/NAME.maps.npz   with --save-maps: float16 heatmaps (19,h,w), pafs (38,h,w)
                          and cell_size (image pixels per map cell along x, y);
                          videos get OUT/NAME.maps/FRAME.npz
      OUT/NAME.{heatmaps,parts,pafs}.png  with --render-maps: the merged maps
                          drawn over an image (images only; all stages: ftpose maps)
      OUT/predictions.json       COCO keypoint results (category 1, 17 x,y,v
                                 triplets, score; video records carry "frame")
      OUT/predictions.meta.json  image_id -> file (and frame), model, settings
    (--json FILE moves the last two to FILE and FILE's stem + .meta.json.)

    image_id is the number in the file name when every input is an image named by a
    distinct number (COCO style), else images and frames are numbered 0, 1, 2... in
    input order.  Unreadable inputs are reported and skipped; the exit code is then 1.
    Partly readable ones are processed as far as they go and reported as warnings; the
    exit code is 1 for them too unless --allow-partial.
    """
    from ftpose.export.backends import pipeline_threads
    from ftpose.predictor import MULTI_SCALES
    from ftpose.sources import expand_inputs

    if multi_scale and scales:
        raise click.UsageError("give either --scales or --multi-scale, not both")
    if save_maps and out is None:
        raise click.UsageError("--save-maps needs --out")
    if render_maps and out is None:
        raise click.UsageError("--render-maps needs --out")
    if json_path is None and out is not None:
        json_path = out / "predictions.json"
    scales = MULTI_SCALES if multi_scale else (scales or (1.0,))

    sources, errors = expand_inputs(inputs or [SAMPLE_PHOTO])
    for error in errors:
        click.echo(f"error: {error}", err=True)
    outputs = Outputs(sources, out)
    try:   # mistakes in where the outputs go are found before the compute
        for folder in {out, None if json_path is None else json_path.parent} - {None}:
            check_writable(folder)
        if json_path is not None:
            outputs.guard(json_path)
            outputs.guard(meta_path(json_path))
    except InputError as e:
        raise click.ClickException(str(e)) from None
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        photos = calibration_photos(calibration, [backend])
    except InputError as e:
        raise click.ClickException(str(e)) from None
    predictor = load_predictor(model_name, weights, device=device, scales=scales, flip=flip,
                               batch_size=batch_size, backend=backend, calibration=photos)

    run = _Run(predictor, outputs, save_maps, _numeric_ids(sources), echo=out is None and json_path is None,
               max_pixels=max_pixels, render_maps=render_maps)
    with contextlib.ExitStack() as locks:
        try:
            for written in (out, json_path):
                if written is not None:
                    locks.enter_context(results_lock(written))
        except InputError as e:
            raise click.ClickException(str(e)) from None
        with pipeline_threads(predictor.backend):
            run.process(sources)
        kept = json_path is not None and not _write_json(json_path, run, predictor, model_name, weights)
    failed = len(errors) + run.failed
    summary = f"{run.images} image(s), {run.people} people"
    if out is not None:
        summary += f"; overlays in {out}"
    if kept:
        summary += f"; nothing to write, {json_path} left as it was"
    elif json_path is not None:
        summary += f"; results in {json_path}"
    if failed:
        summary += f"; {failed} input(s) failed"
    if run.partial:
        summary += f"; {run.partial} input(s) only partly read"
    click.echo(summary, err=True)
    if failed or (run.partial and not allow_partial):
        sys.exit(1)


def _numeric_ids(sources) -> dict | None:
    """``{path: int}`` when every source is an image named by a distinct number, else None."""
    if not sources or any(s.is_video or not s.path.stem.isdigit() for s in sources):
        return None
    ids = {s.path: int(s.path.stem) for s in sources}
    return ids if len(set(ids.values())) == len(ids) else None


@dataclass
class _Item:
    """One image to predict on: a still image or a video frame."""

    image: np.ndarray
    source: object
    frame: int | None = None


class _Run:
    """Processes the sources in order, writing overlays as it goes, collecting results."""

    def __init__(self, predictor, outputs, save_maps: bool, numeric_ids: dict | None, echo: bool, max_pixels: int,
                 render_maps: bool = False):
        self.predictor = predictor
        self.max_pixels = max_pixels
        self.outputs = outputs
        self.out = outputs.root
        self.save_maps = save_maps
        self.render_maps = render_maps
        self.numeric_ids = numeric_ids
        self.echo = echo            # no output files: say what was found on stdout
        self.results: list[dict] = []
        self.images_meta: list[dict] = []
        self.images = self.people = self.failed = self.partial = 0
        self._bar = None

    def process(self, sources) -> None:
        from tqdm import tqdm

        stills = sum(not s.is_video for s in sources)
        show = len(sources) > 1 or any(s.is_video for s in sources)
        # disable=None: a bar on terminals only, never in logs or pipes
        with tqdm(total=stills, unit="img", disable=None if show else True, file=sys.stderr,
                  dynamic_ncols=True) as bar:
            self._bar = bar
            batch: list[_Item] = []
            for source in sources:
                if source.is_video:
                    self._flush(batch)
                    batch = []
                    self._video(source)
                    continue
                item = self._read(source)
                if item is not None:
                    batch.append(item)
                if len(batch) >= self.predictor.batch_size:
                    self._flush(batch)
                    batch = []
            self._flush(batch)

    def _report(self, error: InputError) -> None:
        self.failed += 1
        self._bar.write(f"error: {error}", file=sys.stderr)

    @contextlib.contextmanager
    def _partial_reported(self):
        """Turn :class:`PartialInputWarning` into a ``warning:`` line, counted for the exit code."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PartialInputWarning)
            yield
        for warning in caught:
            if issubclass(warning.category, PartialInputWarning):
                self.partial += 1
                self._bar.write(f"warning: {warning.message}", file=sys.stderr)
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)

    def _read(self, source) -> _Item | None:
        from ftpose.files import read_image

        try:
            with self._partial_reported():
                return _Item(read_image(source.path, self.max_pixels), source)
        except InputError as e:
            self._report(e)
            self._bar.update()
            return None

    def _flush(self, batch: list[_Item]) -> None:
        """Predict on a batch of still images and write their outputs."""
        from ftpose.files import write_image

        if not batch:
            return
        for item, (people, maps) in zip(batch, self._predict([i.image for i in batch])):
            self._record(item, people)
            if self.out is not None:
                try:
                    if self.save_maps:
                        _write_maps(self.outputs.path(item.source, ".maps.npz"), maps)
                    if self.render_maps:
                        self._write_panels(item, maps)
                    write_image(self.outputs.path(item.source, ".jpg"), self._overlay(item.image, people))
                except OSError as e:
                    self._report(InputError(self.out, f"cannot write outputs ({e.strerror or e})"))
                except InputError as e:
                    self._report(e)
            self._bar.update()

    def _write_panels(self, item: _Item, maps) -> None:
        from ftpose.files import write_image
        from ftpose.mapview import map_panels
        from ftpose.visualize import draw_banner

        for name, panel in map_panels(item.image, maps).items():
            if not self.predictor.trained:
                draw_banner(panel, UNTRAINED_BANNER)
            write_image(self.outputs.path(item.source, f".{name}.png"), panel)

    def _video(self, source) -> None:
        """Predict on every frame of a video, writing an annotated .mp4 beside the results."""
        from ftpose.sources import VideoReader

        try:
            with self._partial_reported(), contextlib.ExitStack() as stack:
                reader = VideoReader(source.path)
                self._bar.total += reader.frame_count
                self._bar.refresh()
                writer = None
                if self.out is not None:
                    writer = stack.enter_context(_video_writer(self.outputs.path(source, ".mp4"), reader.fps, reader.size))
                for frames in _chunks(reader, self.predictor.batch_size):
                    predictions = self._predict([image for _, image in frames])
                    for (index, image), (people, maps) in zip(frames, predictions):
                        self._record(_Item(image, source, index), people)
                        if writer is not None:
                            writer.write(self._overlay(image, people))
                        if self.save_maps:
                            _write_maps(self.outputs.path(source, ".maps") / f"{index:06d}.npz", maps)
                        self._bar.update()
        except OSError as e:
            self._report(InputError(self.out, f"cannot write outputs ({e.strerror or e})"))
        except InputError as e:
            self._report(e)

    def _predict(self, images):
        maps = self.predictor.maps_batch(images)
        return [(self.predictor.decode(m), m) for m in maps]

    def _record(self, item: _Item, people) -> None:
        if self.numeric_ids is not None:
            image_id = self.numeric_ids[item.source.path]
        else:
            image_id = len(self.images_meta)
        meta = {"image_id": image_id, "file": str(item.source.path)}
        records = people.coco_results(image_id)
        if item.frame is not None:
            meta["frame"] = item.frame
            for record in records:
                record["frame"] = item.frame
        meta["height"], meta["width"] = item.image.shape[:2]
        if self.echo:
            where = item.source.path if item.frame is None else f"{item.source.path} frame {item.frame}"
            self._bar.write(f"{where}: {len(people)} people", file=sys.stdout)
        self.images_meta.append(meta)
        self.results += records
        self.images += 1
        self.people += len(people)

    def _overlay(self, image, people):
        from ftpose.visualize import draw_banner, draw_people

        canvas = draw_people(image, people)
        return canvas if self.predictor.trained else draw_banner(canvas, UNTRAINED_BANNER)


def _chunks(frames, size: int) -> Iterator[list]:
    chunk = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@contextlib.contextmanager
def _video_writer(path: Path, fps: float, size: tuple[int, int]):
    """A ``cv2.VideoWriter`` (mp4v) on a temp file, renamed to ``path`` once complete."""
    import cv2

    from ftpose.files import atomic_path

    with atomic_path(path) as temp:
        writer = cv2.VideoWriter(str(temp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise InputError(path, "cannot open an mp4v video writer for this file")
        try:
            yield writer
        finally:
            writer.release()


def _write_maps(path: Path, maps) -> None:
    from ftpose.files import atomic_write

    with atomic_write(path) as f:
        np.savez_compressed(f, heatmaps=maps.heatmaps.astype(np.float16), pafs=maps.pafs.astype(np.float16),
                            cell_size=np.array(maps.cell_size))


def _write_json(path: Path, run: _Run, predictor, model_name: str, weights) -> bool:
    """The results and their meta file; False when nothing was processed and results already exist."""
    meta = {
        "model": getattr(predictor.network, "model_name", model_name),
        "weights": None if weights is None else str(weights),
        "trained": predictor.trained,
        "scales": list(predictor.scales),
        "flip": predictor.flip,
        "backend": getattr(predictor.backend, "name", None),
        "images": run.images_meta,
    }
    if not predictor.trained:
        meta["warning"] = "the network is untrained (random weights): these results are meaningless"
    return write_results(path, run.results, meta, processed=run.images)
