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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

STAGES = ("read", "preprocess", "network", "merge", "grouping", "drawing")

FP32_PEAK_GMACS_PER_CORE = 120.0
"""This machine's fp32 peak per core (REFERENCE §6: 200-240 GMAC/s for its two Zen 5
cores, two 512-bit FMA pipes each).  bf16 dot products (AVX-512 BF16) do twice the MACs
per instruction and int8 ones (AVX-512 VNNI) four times, hence :data:`PEAK_FACTOR`."""
PEAK_FACTOR = {"fp32": 1, "bf16": 2, "int8": 4}
PRECISION = {"torch": "fp32", "torch-bf16": "bf16", "onnxruntime": "fp32", "onnxruntime-int8": "int8",
             "tensorrt": "fp16"}

# An upright person facing the camera, OpenPose-18 order: (x, y) in units of the
# person's height from the top of the head.  Used to draw grouping scenes.
UPRIGHT_PERSON = ((0.0, .09), (0.0, .19), (-.12, .20), (-.15, .34), (-.16, .47), (.12, .20), (.15, .34),
                  (.16, .47), (-.07, .50), (-.08, .72), (-.08, .94), (.07, .50), (.08, .72), (.08, .94),
                  (-.03, .07), (.03, .07), (-.06, .08), (.06, .08))


def summarize_times(seconds: Sequence[float]) -> dict:
    """Median, quartiles and minimum of a list of durations, in milliseconds."""
    ms = np.asarray(seconds, np.float64) * 1e3
    p25, p50, p75 = np.percentile(ms, [25, 50, 75])
    return {"median_ms": round(float(p50), 3), "p25_ms": round(float(p25), 3), "p75_ms": round(float(p75), 3),
            "min_ms": round(float(ms.min()), 3), "runs": len(ms)}


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
    from ftpose.targets import encode

    per_row = min(num_people, 5)
    rows = -(-num_people // per_row)
    person_height = 0.9 * height / rows
    keypoints = []
    for i in range(num_people):
        row, col = divmod(i, per_row)
        x0 = (col + 0.5) * width / per_row
        y0 = row * height / rows + 0.05 * height / rows
        keypoints.append([(x0 + dx * person_height, y0 + dy * person_height, 2.0) for dx, dy in UPRIGHT_PERSON])
    return encode(np.array(keypoints), height, width, stride=8)


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


def run_pipeline(predictor, image: np.ndarray, read_seconds: float, reference=None) -> dict[str, float]:
    """One frame through ``predictor`` (its backend wrapped in :class:`TimedBackend`), timed per stage.

    ``reference``: ``PoseMaps`` to decode instead of the network's own (see the module
    docstring); the network still runs.  Preprocessing is timed by repeating it alone,
    since it is interleaved with the network inside the predictor; merging is the rest.
    """
    from ftpose.predictor import _network_input
    from ftpose.visualize import draw_people

    start = time.perf_counter()
    for scale in predictor.scales:
        pixels = _network_input(image, round(scale * predictor.input_height)).pixels
        torch.from_numpy(pixels[None]).permute(0, 3, 1, 2).float().div_(256.0).sub_(0.5)
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
    return {"read": read_seconds, "preprocess": preprocess, "network": backend.seconds,
            "merge": max(0.0, maps_seconds - backend.seconds - preprocess), "grouping": grouping,
            "drawing": drawing}


def read_frames(source, limit: int) -> Iterable[tuple[np.ndarray, float]]:
    """``(BGR frame, seconds to read it)`` for up to ``limit`` frames of a video or photos of a folder/file."""
    from ftpose.files import read_image
    from ftpose.sources import VideoReader, expand_inputs

    sources, errors = expand_inputs([source])
    if errors:
        raise errors[0]
    count = 0
    for item in sources:
        if item.is_video:
            frames = iter(VideoReader(item.path))
            while count < limit:
                start = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                yield frame[1], time.perf_counter() - start
                count += 1
        elif count < limit:
            start = time.perf_counter()
            image = read_image(item.path)
            yield image, time.perf_counter() - start
            count += 1


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (10^6 bytes)."""
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes * (1 if platform.system() == "Darwin" else 1024) / 1e6 / (1024 if platform.system() == "Darwin" else 1)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine() -> dict:
    import onnxruntime

    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(), "load_average": round(os.getloadavg()[0], 2)}
