"""A predict run end to end: outputs chosen, finished inputs skipped, final files built.

:func:`run_batch` is what ``ftpose predict`` does once it has parsed its options: the
model is loaded once for every input; each sequence (``ftpose.pipeline``) that a
previous run with the same settings finished is skipped, its journal lines kept (the
manifest says which); the aggregate files (COCO JSON, CSV, PoseTrack) are built from
the journal at the end, also when the run is interrupted, so they hold everything
done so far.  Where files may go follows ``ftpose.outputs``: output folders are
checked writable and no output may land on an input before any compute, a lock keeps
a second run out of the same outputs, and a run that processed nothing leaves earlier
results as they were.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ftpose.files import InputError
from ftpose.outputs import Outputs, check_writable, meta_path, results_lock
from ftpose.pipeline import Pipeline, PipelineSettings, sequences
from ftpose.sources import Source


@dataclass(frozen=True)
class OutputPlan:
    """Where results go; any may be None.  ``out`` holds overlays (and maps with
    ``save_maps``).  The journal and manifest lie beside the first of ``json`` and
    ``csv`` given, else in ``out``, else beside the ``openpose`` or ``posetrack`` folder
    (never inside it: readers take every ``.json`` there)."""

    out: Path | None = None
    json: Path | None = None
    csv: Path | None = None
    openpose: Path | None = None
    posetrack: Path | None = None
    save_maps: bool = False
    render_maps: bool = False
    video_suffix: str = ".mp4"

    @property
    def journal(self) -> Path | None:
        """``predictions.jsonl``-style journal path, None when nothing is written."""
        for file in (self.json, self.csv):
            if file is not None:
                return file.with_suffix(".jsonl")
        if self.out is not None:
            return self.out / "predictions.jsonl"
        for folder in (self.openpose, self.posetrack):
            if folder is not None:
                return folder.with_name(folder.name + ".jsonl")
        return None

    @property
    def manifest(self) -> Path | None:
        journal = self.journal
        return None if journal is None else journal.with_suffix(".manifest.json")

    def prepare(self, sources: list[Source]) -> Outputs:
        """Check, before any compute, that every folder can be written and that no
        results file is an input; the ``ftpose.outputs.Outputs`` that names overlays."""
        files = [self.json, None if self.json is None else meta_path(self.json), self.csv, self.journal,
                 self.manifest]
        folders = {self.out, self.openpose, self.posetrack} | {f.parent for f in files if f is not None}
        for folder in folders - {None}:
            check_writable(folder)
        outputs = Outputs(sources, self.out)
        for file in files:
            if file is not None:
                outputs.guard(file)
        return outputs


@dataclass
class BatchSummary:
    frames: int = 0              # processed in this run
    people: int = 0
    failed: int = 0              # inputs or outputs that failed
    partial: int = 0             # inputs read only in part
    skipped: list[Source] = field(default_factory=list)   # finished by an earlier run
    total_frames: int = 0        # in the final files, skipped inputs' frames included
    total_people: int = 0
    interrupted: bool = False
    kept: bool = False           # nothing processed: the earlier results were left as they were


def run_batch(predictor, sources: list[Source], plan: OutputPlan, settings: PipelineSettings, meta: dict,
              banner: str | None = None, redo: bool = False, progress: bool = True,
              on_error: Callable[[InputError], None] | None = None,
              on_warning: Callable[[Warning], None] | None = None, echo: Callable[[str], None] | None = None) -> BatchSummary:
    """Predict on ``sources`` and write the outputs ``plan`` names.

    ``meta`` describes the run (model, weights, scales ...): it goes into the JSON's
    ``.meta.json`` and, with ``settings``, decides whether an earlier run's manifest
    applies (same description, same settings).  ``redo`` ignores the manifest.
    ``echo`` receives ``SOURCE: N people`` lines when no file output is given.
    KeyboardInterrupt (Ctrl-C; the CLI turns SIGTERM into it) ends the run early:
    the final files are still written, then it is re-raised.
    """
    from ftpose import writers

    outputs = plan.prepare(sources)
    summary = BatchSummary()
    work = sequences(sources, tracked=settings.track is not None)
    sinks, manifest = [], None
    journal_path = plan.journal
    with contextlib.ExitStack() as locks:
        for written in (plan.out, journal_path):
            if written is not None:
                locks.enter_context(results_lock(written))
        if journal_path is not None:
            manifest = writers.Manifest(plan.manifest, {"run": meta, "settings": _describe(settings)})
            if redo:
                manifest.done = {}
            finished = [s for s in work if all(manifest.finished(source) for source in s.sources)]
            summary.skipped = [source for s in finished for source in s.sources]
            work = [s for s in work if s not in finished]
        elif echo is not None:
            sinks.append(writers.Echo(echo))
        if plan.out is not None:
            sinks.append(writers.OverlayWriter(outputs, banner, plan.video_suffix))
            if plan.save_maps:
                sinks.append(writers.MapsWriter(outputs))
            if plan.render_maps:
                sinks.append(writers.MapPanelsWriter(outputs, banner))
        if plan.openpose is not None:
            sinks.append(writers.OpenPoseJsonWriter(Outputs(sources, plan.openpose)))
        if journal_path is not None:
            # last: a frame in the journal has all its per-frame files, a sequence in the
            # manifest its finished overlay video
            sinks += [writers.Journal(journal_path, keep={source.label for source in summary.skipped}), manifest]

        pipeline = Pipeline(predictor, settings, sinks, on_error, progress, on_warning)
        try:
            pipeline.run(work)
        except KeyboardInterrupt:
            summary.interrupted = True
        summary.frames, summary.people, summary.failed = pipeline.frames, pipeline.people, pipeline.failed
        summary.partial = pipeline.partial
        summary.kept = not pipeline.frames and not summary.skipped and plan.json is not None and plan.json.exists()
        if journal_path is not None and not summary.kept:
            order = [source.label for source in sources]
            if plan.json is not None:
                totals = writers.write_coco_results(journal_path, plan.json, order, meta, numeric_image_ids(sources))
                summary.total_frames, summary.total_people = totals["images"], totals["people"]
            if plan.csv is not None:
                writers.write_csv(journal_path, plan.csv, order)
            if plan.posetrack is not None:
                writers.write_posetrack(journal_path, plan.posetrack, order)
    if summary.interrupted:
        raise KeyboardInterrupt
    return summary


def numeric_image_ids(sources: list[Source]) -> dict | None:
    """``{label: int}`` when every source is an image file named by a distinct number
    (COCO style), else None (frames are then numbered in input order)."""
    if not sources or any(s.is_video or s.kind != "file" or not s.path.stem.isdigit() for s in sources):
        return None
    ids = {s.label: int(s.path.stem) for s in sources}
    return ids if len(set(ids.values())) == len(ids) else None


def _describe(settings: PipelineSettings) -> dict:
    """The settings as plain JSON values, for comparing runs."""
    import dataclasses
    import json

    return json.loads(json.dumps(dataclasses.asdict(settings), default=str))
