"""``ftpose predict``: people in images, folders, videos, cameras and streams -> overlays and results."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from ftpose.cli.options import calibration_photos, load_predictor, model_option, predictor_options, weights_option
from ftpose.files import MAX_PIXELS, SAMPLE_PHOTO, InputError
from ftpose.pipeline import DEFAULT_MIN_JOINTS, DEFAULT_MIN_SCORE

UNTRAINED_BANNER = "UNTRAINED NETWORK (random weights): these poses are meaningless"


@click.command("predict")
@click.argument("inputs", nargs=-1, metavar="[INPUT]...")
@model_option
@weights_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for overlays (and maps); the JSON goes to OUT/predictions.json unless --json.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="COCO keypoint results file; OUT/predictions.json by default when --out is given.")
@predictor_options
@click.option("--save-maps", is_flag=True, help="Write the merged heatmaps and PAFs (.npz) to OUT.")
@click.option("--render-maps", is_flag=True,
              help="Also draw the merged heatmaps and PAFs of each image as PNG panels in OUT (see `ftpose maps`).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=MAX_PIXELS, show_default=True,
              help="Refuse images with more pixels than this (read from the file's header, before decoding).")
@click.option("--allow-partial", is_flag=True,
              help="Exit 0 even when an input was only partly readable (corrupt JPEG data, a video cut short); "
                   "it is reported either way.")
@click.option("--track", is_flag=True,
              help="Follow people across frames: every output carries a track id (images of one folder are "
                   "taken as consecutive frames).")
@click.option("--smooth", is_flag=True, help="Remove jitter as frames come (One-Euro filter per joint; implies --track).")
@click.option("--smooth-offline", is_flag=True,
              help="Recorded video: fill short gaps and smooth without lag, looking at the whole track "
                   "(implies --track).")
@click.option("--min-score", type=click.FloatRange(min=0), default=DEFAULT_MIN_SCORE, show_default=True,
              help="Drop people scoring less (person score, 0..1).")
@click.option("--min-joints", type=click.IntRange(min=0), default=DEFAULT_MIN_JOINTS, show_default=True,
              help="Drop people with fewer joints found.")
@click.option("--max-people", type=click.IntRange(min=1), help="Keep at most this many people per frame, best first.")
@click.option("--start", type=click.IntRange(min=0), default=0, help="Videos: first frame to process.")
@click.option("--frame-step", type=click.IntRange(min=1), default=1, help="Videos: process every N-th frame.")
@click.option("--max-frames", type=click.IntRange(min=1), help="Videos: process at most this many frames each.")
@click.option("--folder-videos/--no-folder-videos", default=True, show_default=True,
              help="Whether videos inside folder INPUTs are processed.")
@click.option("--openpose-json", "openpose_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write OpenPose-format JSON per frame to this folder.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every joint as a row: video, frame, time, track, person, keypoint, x, y, confidence.")
@click.option("--posetrack-json", "posetrack_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write PoseTrack-format results (one file per video or folder) for ftpose eval --dataset "
                   "posetrack.")
@click.option("--video-format", type=click.Choice(["mp4", "webm"]), default="mp4", show_default=True,
              help="Overlay videos: H.264 in MP4 or VP9 in WebM (both play in browsers).")
@click.option("--redo", is_flag=True, help="Process every input again, also those an earlier run finished.")
def command(inputs, model_name, weights, out, json_path, scales, multi_scale, flip, save_maps, render_maps,
            device, batch_size, backend, calibration, threads, max_pixels, allow_partial, track, smooth, smooth_offline, min_score, min_joints,
            max_people, start, frame_step, max_frames, folder_videos, openpose_dir, csv_path, posetrack_dir,
            video_format, redo):
    """Estimate the poses of everyone in INPUT images, folders, videos, cameras or streams.

    INPUT is an image or video file, a folder (searched recursively, sorted; it says
    how many images and videos it holds), a camera index (0), a stream URL (rtsp://,
    http://...) or - (one image on standard input).  With no INPUT the bundled sample
    photo is used.

    \b
    Outputs:
      OUT/NAME.jpg        overlay of an image (NAME keeps sub-folders of a folder)
      OUT/NAME.mp4        overlay video (H.264; --video-format webm: VP9)
      OUT/NAME.maps.npz   with --save-maps: float16 heatmaps (19,h,w), pafs (38,h,w)
                          and cell_size (image pixels per map cell along x, y);
                          videos get OUT/NAME.maps/FRAME.npz
      OUT/NAME.{heatmaps,parts,pafs}.png  with --render-maps: the merged maps
                          drawn over an image (images only; all stages: ftpose maps)
      OUT/predictions.json       COCO keypoint results (category 1, 17 x,y,v
                                 triplets, score; video records carry "frame",
                                 tracked ones "track_id")
      OUT/predictions.meta.json  image_id -> file (and frame), model, settings
      OUT/predictions.jsonl      journal: one line per frame, written as it is done
      OUT/predictions.manifest.json  inputs finished (a rerun skips them)
    (--json FILE moves the last four beside FILE.)

    Results are written as they are produced: an interrupted run (Ctrl-C, SIGTERM,
    kill) keeps every finished frame in the journal, and the final files are written
    from it (on Ctrl-C and SIGTERM at once; after a kill, by rerunning the command,
    which skips the finished inputs).  image_id is the number in the file name when
    every input is an image named by a distinct number (COCO style), else frames are
    numbered 0, 1, 2... in input order.  Unreadable inputs are reported and skipped;
    the exit code is then 1.  Partly readable ones are processed as far as they go and
    reported as warnings; the exit code is 1 for them too unless --allow-partial.
    """
    from ftpose.batch import OutputPlan, run_batch
    from ftpose.export.backends import pipeline_threads
    from ftpose.pipeline import PipelineSettings
    from ftpose.predictor import MULTI_SCALES
    from ftpose.smoothing import OfflineParams, OneEuroParams
    from ftpose.sources import FrameSelection, expand_inputs
    from ftpose.tracking import TrackerParams

    if multi_scale and scales:
        raise click.UsageError("give either --scales or --multi-scale, not both")
    if save_maps and out is None:
        raise click.UsageError("--save-maps needs --out")
    if render_maps and out is None:
        raise click.UsageError("--render-maps needs --out")
    if smooth and smooth_offline:
        raise click.UsageError("give either --smooth (live) or --smooth-offline (recorded video), not both")
    if json_path is None and out is not None:
        json_path = out / "predictions.json"
    scales = MULTI_SCALES if multi_scale else (scales or (1.0,))

    sources, errors = expand_inputs(inputs or [SAMPLE_PHOTO], folder_videos=folder_videos,
                                    on_folder=lambda contents: click.echo(str(contents), err=True))
    if smooth_offline and any(s.is_live for s in sources):
        raise click.UsageError("--smooth-offline needs recorded video; use --smooth for cameras and streams")
    for error in errors:
        click.echo(f"error: {error}", err=True)
    if render_maps and any(s.is_video for s in sources):
        click.echo("note: --render-maps draws the maps of images only; videos get none (--save-maps keeps them)",
                   err=True)
    plan = OutputPlan(out=out, json=json_path, csv=csv_path, openpose=openpose_dir, posetrack=posetrack_dir,
                      save_maps=save_maps, render_maps=render_maps, video_suffix=f".{video_format}")
    try:   # mistakes in where the outputs go are found before the compute
        plan.prepare(sources)
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

    settings = PipelineSettings(
        min_score=min_score, min_joints=min_joints, max_people=max_people,
        track=TrackerParams() if track or smooth or smooth_offline else None,
        smooth=OneEuroParams() if smooth else None,
        smooth_offline=OfflineParams() if smooth_offline else None,
        frames=FrameSelection(start, frame_step, max_frames), keep_maps=save_maps or render_maps,
        max_pixels=max_pixels)
    meta = {"model": getattr(predictor.network, "model_name", model_name),
            "weights": None if weights is None else str(weights), "trained": predictor.trained,
            "scales": list(predictor.scales), "flip": predictor.flip,
            "backend": getattr(predictor.backend, "name", None)}
    if not predictor.trained:
        meta["warning"] = "the network is untrained (random weights): these results are meaningless"
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with pipeline_threads(predictor.backend):
            summary = run_batch(predictor, sources, plan, settings, meta,
                                banner=None if predictor.trained else UNTRAINED_BANNER, redo=redo,
                                on_error=lambda error: click.echo(f"error: {error}", err=True),
                                on_warning=lambda warning: click.echo(f"warning: {warning}", err=True),
                                echo=lambda line: click.echo(line))
    except InputError as e:   # another run holds the outputs
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        click.echo(f"interrupted: the results so far are in {plan.journal or 'no file'}"
                   + (f" and {json_path}" if json_path else ""), err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)

    failed = len(errors) + summary.failed
    text = f"{summary.frames} image(s), {summary.people} people"
    if summary.skipped:
        text += f"; {len(summary.skipped)} input(s) finished by an earlier run, skipped (--redo processes them)"
    if summary.kept:
        text += f"; nothing to write, {json_path} left as it was"
    for label, path in (("overlays", out), ("results", None if summary.kept else json_path), ("CSV", csv_path),
                        ("OpenPose JSON", openpose_dir), ("PoseTrack results", posetrack_dir)):
        if path is not None:
            text += f"; {label} in {path}"
    if failed:
        text += f"; {failed} input(s) failed"
    if summary.partial:
        text += f"; {summary.partial} input(s) only partly read"
    click.echo(text, err=True)
    if failed or (summary.partial and not allow_partial):
        sys.exit(1)


def _interrupt(signum, frame):
    """SIGTERM ends the run as Ctrl-C does: the final files are written from what is done."""
    raise KeyboardInterrupt
