"""Measuring speed: network latency, grouping, and every stage of the pipeline (``ftpose bench``).

Comparisons are only fair when both sides see the same machine load, so every
measurement here is *interleaved*: round ``r`` runs each contender once, in reversed
order on odd rounds, and results are medians.  End to end, one frame is read once and
then given to every contender in turn.

The end-to-end stages are those of ``ftpose predict``: reading (image decoding or the
video's next frame), preprocessing (resize, pad, normalise), the network, merging
(map resampling and averaging), grouping and drawing.  An untrained network's maps are
noise with hundreds of spurious peaks, so decoding them would time nothing a user ever
waits for; for such networks the grouping stage decodes *reference maps* of the same
frame instead (by default those of the trained ``teacher`` network), the same for every
contender, as for networks trained alike.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

STAGES = ("read", "preprocess", "network", "merge", "grouping", "drawing")

FP32_PEAK_GMACS_PER_CORE = 120.0
"""The fp32 peak per core of the machine this was developed on (a Zen 5 core: two 512-bit
FMA pipes, 16 fp32 lanes each, at about 3.75 GHz).  bf16 dot products (AVX-512 BF16) do twice the MACs
per instruction and int8 ones (AVX-512 VNNI) four times, hence :data:`PEAK_FACTOR`."""
PEAK_FACTOR = {"fp32": 1, "bf16": 2, "int8": 4}

def summarize_times(seconds: Sequence[float]) -> dict:
    """Median, quartiles and minimum of a list of durations, in milliseconds."""
    ms = np.asarray(seconds, np.float64) * 1e3
    p25, p50, p75 = np.percentile(ms, [25, 50, 75])
    return {"median_ms": round(float(p50), 3), "p25_ms": round(float(p25), 3), "p75_ms": round(float(p75), 3),
            "min_ms": round(float(ms.min()), 3), "runs": len(ms)}


SETTLE_SECONDS = 0.02
"""Pause between contenders: PyTorch's OpenMP workers spin for a few milliseconds after
their last task, and would otherwise take cores from whichever contender runs next."""


def interleaved(runners: dict, argument, rounds: int, warmup: int = 1,
                synchronize: Callable[[], None] = lambda: None) -> dict[object, list[float]]:
    """Seconds per call of every runner on ``argument``, ``rounds`` interleaved rounds after ``warmup``."""
    keys = list(runners)
    for key in keys:
        for _ in range(warmup):
            runners[key](argument)
    synchronize()
    times = {key: [] for key in keys}
    for r in range(rounds):
        for key in keys if r % 2 == 0 else keys[::-1]:
            time.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            runners[key](argument)
            synchronize()
            times[key].append(time.perf_counter() - start)
    return times


def grouping_scene(num_people: int, height: int = 368, width: int = 432) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth maps at stride 8 of ``num_people`` upright people side by side in rows.

    Up to five people share a row; rows split the height.  Every joint and limb is
    there, as on a trained network's maps of people in full view.
    """
    from ftpose.keypoints import upright_person
    from ftpose.network_input import STRIDE
    from ftpose.targets import encode

    per_row = min(num_people, 5)
    rows = -(-num_people // per_row)
    person_height = 0.9 * height / rows
    keypoints = []
    for i in range(num_people):
        row, col = divmod(i, per_row)
        x0 = (col + 0.5) * width / per_row
        y0 = row * height / rows + 0.05 * height / rows
        keypoints.append(upright_person(x0, y0, person_height))
    return encode(np.array(keypoints), height, width, stride=STRIDE)


def time_grouping(num_people: int, repeats: int = 200, params=None) -> dict:
    """Timings of :func:`ftpose.grouping.decode` on :func:`grouping_scene`, plus the people found."""
    from ftpose.grouping import decode

    heatmaps, pafs = grouping_scene(num_people)
    found = len(decode(heatmaps, pafs, params))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        decode(heatmaps, pafs, params)
        seconds.append(time.perf_counter() - start)
    return {**summarize_times(seconds), "people": num_people, "found": found}


class TimedBackend:
    """Wraps a backend and records how long each call takes."""

    def __init__(self, backend, synchronize: Callable[[], None] = lambda: None):
        self.backend = backend
        self.name = getattr(backend, "name", type(backend).__name__)
        self.synchronize = synchronize
        self.seconds = 0.0

    def __call__(self, batch):
        start = time.perf_counter()
        out = self.backend(batch)
        self.synchronize()
        self.seconds += time.perf_counter() - start
        return out


@dataclass
class StageTimes:
    """Seconds per frame of each pipeline stage, over frames."""

    frames: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    total: list[float] = field(default_factory=list)

    def add(self, stages: dict[str, float]) -> None:
        for name, seconds in stages.items():
            self.frames[name].append(seconds)
        self.total.append(sum(stages.values()))

    def summary(self) -> dict:
        return {"stages_ms": {s: round(1e3 * statistics.median(t), 3) for s, t in self.frames.items() if t},
                **{f"end_to_end_{k}": v for k, v in summarize_times(self.total).items()}}


def run_pipeline(predictor, image: np.ndarray, read_seconds: float, reference=None):
    """One frame through ``predictor`` (its backend wrapped in :class:`TimedBackend`), timed per stage.

    Returns ``(seconds per stage, the merged maps)``.  ``reference``: ``PoseMaps`` to
    decode instead of the network's own (see the module docstring); the network still
    runs.  Preprocessing happens inside the predictor between network calls, so it is
    timed by repeating it alone; merging is what remains of the predictor's time.
    PyTorch gets the threads ``ftpose predict`` gives it beside this backend
    (:func:`ftpose.export.backends.pipeline_threads`).
    """
    from ftpose.export.backends import pipeline_threads

    with pipeline_threads(predictor.backend.backend):
        return _staged(predictor, image, read_seconds, reference)


def _staged(predictor, image: np.ndarray, read_seconds: float, reference):
    from ftpose.network_input import normalize, prepare_network_input
    from ftpose.visualize import draw_people

    start = time.perf_counter()
    for scale in predictor.scales:
        pixels = prepare_network_input(image, round(scale * predictor.input_height), predictor.stride).pixels
        normalize(torch.from_numpy(pixels[None]).permute(0, 3, 1, 2))
    preprocess = time.perf_counter() - start
    backend = predictor.backend
    backend.seconds = 0.0
    start = time.perf_counter()
    maps = predictor.maps(image)
    maps_seconds = time.perf_counter() - start
    start = time.perf_counter()
    people = predictor.decode(maps if reference is None else reference)
    grouping = time.perf_counter() - start
    start = time.perf_counter()
    draw_people(image, people)
    drawing = time.perf_counter() - start
    stages = {"read": read_seconds, "preprocess": preprocess, "network": backend.seconds,
              "merge": max(0.0, maps_seconds - backend.seconds - preprocess), "grouping": grouping,
              "drawing": drawing}
    return stages, maps


def read_frames(source, limit: int) -> list[tuple[np.ndarray, float]]:
    """``(BGR frame, seconds to read it)`` for up to ``limit`` photos of a folder/file or frames of a video."""
    from ftpose.files import read_image
    from ftpose.sources import VideoReader, expand_inputs

    sources, errors = expand_inputs([source])
    if errors:
        raise errors[0]
    frames = []
    for item in sources:
        if len(frames) >= limit:
            break
        if not item.is_video:
            start = time.perf_counter()
            image = read_image(item.path)
            frames.append((image, time.perf_counter() - start))
            continue
        video = iter(VideoReader(item.path))
        try:
            while len(frames) < limit:
                start = time.perf_counter()
                frame = next(video, None)
                if frame is None:
                    break
                frames.append((frame[1], time.perf_counter() - start))
        finally:
            video.close()
    return frames


def compare_maps(reference, maps, threshold: float) -> dict:
    """How far ``maps`` (``PoseMaps``) are from ``reference`` ones of the same image.

    Differences are maxima and means of absolute differences; ``peak_recall`` is the
    fraction of the reference's heatmap peaks (at ``threshold``) that ``maps`` has
    within one cell in the same channel, ``peak_precision`` the converse.
    """
    from ftpose.grouping import find_peaks
    from ftpose.keypoints import NUM_PARTS

    ref_peaks = find_peaks(reference.heatmaps[:NUM_PARTS], threshold)
    peaks = find_peaks(maps.heatmaps[:NUM_PARTS], threshold)
    heat, paf = np.abs(maps.heatmaps - reference.heatmaps), np.abs(maps.pafs - reference.pafs)
    return {"heatmaps_max_diff": float(heat.max()), "heatmaps_mean_diff": float(heat.mean()),
            "pafs_max_diff": float(paf.max()), "pafs_mean_diff": float(paf.mean()),
            "peaks": len(ref_peaks[0]), "peak_recall": _matched_fraction(ref_peaks, peaks),
            "peak_precision": _matched_fraction(peaks, ref_peaks)}


def _matched_fraction(peaks, others) -> float:
    """Fraction of ``peaks`` with a peak of ``others`` in the same channel at most one cell away."""
    (channels, xy, _), (other_channels, other_xy, _) = peaks, others
    if len(channels) == 0:
        return 1.0
    hits = 0
    for channel in np.unique(channels):
        theirs = other_xy[other_channels == channel]
        if len(theirs):
            distance = np.linalg.norm(xy[channels == channel][:, None] - theirs[None], axis=-1).min(1)
            hits += int((distance <= 1.0).sum())
    return hits / len(channels)


NATIVE_BACKEND = "native"
"""The backend name under which bench times a foreign network file: its own runtime."""


def is_foreign(network) -> bool:
    """A network file run by its own runtime (OpenVINO, ONNX Runtime, OpenCV): no ftpose backends apply."""
    from ftpose.models.foreign import OpenPoseLayoutNetwork

    return isinstance(network, OpenPoseLayoutNetwork)


def peak_memory_mb(model: str, backend: str | None, input_size: tuple[int, int], threads: int,
                   calibration: Sequence[np.ndarray] | None = None) -> float:
    """Peak resident memory (MB) of a fresh process that loads ``model`` in ``backend`` and
    runs one ``input_size`` frame; with ``backend=None`` the same process loads nothing."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_peak_memory_child, (model, backend, input_size, threads, calibration))


def _peak_memory_child(model, backend, input_size, threads, calibration) -> float:
    import warnings

    from ftpose.export import create_backend
    from ftpose.predictor import Predictor, UntrainedNetworkWarning

    torch.set_num_threads(threads)
    if backend is not None:
        torch.manual_seed(0)   # the weights bench uses, so ONNX files come from its cache
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UntrainedNetworkWarning)
            predictor = Predictor(model)
        run = create_backend("torch" if backend == NATIVE_BACKEND else backend, predictor.network,
                             calibration=calibration)
        run(torch.zeros(1, 3, *input_size))
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (10^6 bytes).

    Linux's ``VmHWM`` starts afresh when a process executes a new program, unlike
    ``ru_maxrss``, which a spawned interpreter inherits from the process that forked it.
    """
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        return kib * 1024 / 1e6
    except (OSError, StopIteration):
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak * (1 if sys.platform == "darwin" else 1024) / 1e6   # bytes on macOS, KiB elsewhere


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine() -> dict:
    """This machine and the runtimes' versions (``openvino`` is None when the extra is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    import onnxruntime

    try:
        openvino = version("openvino")
    except PackageNotFoundError:
        openvino = None
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "openvino": openvino,
            "python": platform.python_version(), "load_average": round(os.getloadavg()[0], 2)}
