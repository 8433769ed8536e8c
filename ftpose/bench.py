"""The benchmark behind ``ftpose bench``: the paper's Table 5 on this machine, backends side by side.

:class:`Bench` loads every model with every backend, times the network alone
(interleaved rounds, so machine load hits all contenders alike), grouping, every stage
of the end-to-end pipeline on real frames and, optionally, the peak memory of a fresh
process; :func:`ratios` compares models and backends and :func:`render` formats the
result as text.  The timing primitives are in :mod:`ftpose.speed`.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from ftpose.export import BACKENDS, backend_spec
from ftpose.files import InputError
from ftpose.sources import read_photos
from ftpose.speed import NATIVE_BACKEND

GROUPING_PEOPLE = (2, 10)


class Bench:
    """Times ``models`` x ``backends`` at input ``size`` on ``device``, interleaved; :meth:`run` gives the result.

    ``calibration``: photo files or folders for the int8 backends (None or empty: their
    default, the bundled sample photo).
    """

    def __init__(self, models, backends, size, device, runs, warmup, calibration):
        import torch

        self.models, self.backends, self.size, self.device = models, backends, size, device
        self.runs, self.warmup = runs, warmup
        self.calibration_paths = calibration
        self.synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run(self, source, frames: int, grouping_maps: str, memory: bool) -> dict:
        import os

        from ftpose import speed

        # None: the int8 backends calibrate on their default, the bundled sample photo
        int8 = any(backend_spec(b).precision == "int8" for b in self.backends)
        photos = read_photos(self.calibration_paths) if int8 and self.calibration_paths else None
        result = {"machine": speed.machine(), "device": str(self.device), "input": list(self.size),
                  "runs": self.runs, "warmup": self.warmup, "models": {}}
        predictors = {}
        self.backends_of = {}
        for model in self.models:
            for backend in self.backends:
                _status(f"loading {model} / {backend}")
                predictor = self._predictor(model, backend, photos)
                name = getattr(predictor.network, "model_name", Path(model).stem)
                if name not in result["models"]:
                    result["models"][name] = self._model_entry(model, predictor)
                if speed.is_foreign(predictor.network):   # its own runtime only, whatever --backend says
                    predictors[name, speed.NATIVE_BACKEND] = predictor
                    self.backends_of[model] = [speed.NATIVE_BACKEND]
                    break
                predictors[name, backend] = predictor
                self.backends_of[model] = self.backends
        _status(f"reading up to {frames} frame(s) of {source}")
        clips = speed.read_frames(source, frames)
        if not clips:
            raise InputError(source, "no photos or frames to run on")
        result["source"] = {"path": str(source), "frames": len(clips),
                            "size": list(clips[0][0].shape[:2])}
        self._network(predictors, clips[0][0], result)
        result["grouping"] = {str(n): speed.time_grouping(n) for n in GROUPING_PEOPLE}
        self._end_to_end(predictors, clips, grouping_maps, result)
        if memory:
            self._memory(photos, result)
        result["ratios"] = ratios(result)
        result["machine"]["load_average_after"] = round(os.getloadavg()[0], 2)
        return result

    # -- parts -------------------------------------------------------------------------

    def _model_entry(self, model: str, predictor) -> dict:
        """Table 5's static columns: parameters, fp32 size and MACs (counted on the meta device)."""
        import torch

        from ftpose.models import create_model
        from ftpose.models.complexity import summarize
        from ftpose.speed import is_foreign

        network = predictor.network
        if is_foreign(network):   # a file of graphs and constants: no module tree to count
            return {"source": str(model), "trained": True, "runtime": network.runtime, "options": {},
                    "params": None, "size_mb": None, "macs": None, "backends": {}}
        options = {k: v for k, v in getattr(network, "model_options", {}).items() if k != "pretrained_backbone"}
        with torch.device("meta"):
            counted = create_model(network.model_name, **options)
        summary = summarize(counted, self.size)
        return {"source": str(model), "trained": predictor.trained,
                "options": summary["options"], "params": summary["params"], "size_mb": summary["size_mb"],
                "macs": summary["macs"], "backends": {}}

    def _predictor(self, model: str, backend: str, photos):
        import torch

        from ftpose.export import create_backend
        from ftpose.predictor import Predictor, UntrainedNetworkWarning
        from ftpose.speed import TimedBackend, is_foreign

        torch.manual_seed(0)   # the same random weights every run: the ONNX cache stays valid
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UntrainedNetworkWarning)
            predictor = Predictor(model, device=self.device)
        # a network file runs in its own runtime: the torch backend only calls it
        run = create_backend("torch" if is_foreign(predictor.network) else backend, predictor.network,
                             self.device, calibration=photos)
        predictor.backend = TimedBackend(run, self.synchronize)
        return predictor

    def _network(self, predictors, image, result) -> None:
        import cv2
        import torch

        from ftpose import speed
        from ftpose.network_input import network_batch

        height, width = self.size
        x = torch.from_numpy(network_batch([cv2.resize(image, (width, height))])).to(self.device)
        runners = {key: predictor.backend.backend for key, predictor in predictors.items()}
        _status(f"timing the networks: {self.runs} interleaved round(s) of {len(runners)}")
        times = speed.interleaved(runners, x, self.runs, self.warmup, self.synchronize)
        cores = torch.get_num_threads()
        for (model, backend), seconds in times.items():
            entry = result["models"][model]
            timing = speed.summarize_times(seconds)
            median_s = timing["median_ms"] / 1e3
            precision = backend_spec(backend).precision if backend in BACKENDS else "as stored"
            peak = speed.FP32_PEAK_GMACS_PER_CORE * cores * speed.PEAK_FACTOR.get(precision, 1)
            counted = entry["macs"] is not None and self.device.type == "cpu"
            gmacs = entry["macs"] / median_s / 1e9 if entry["macs"] is not None else None
            entry["backends"][backend] = {
                "precision": precision, "network_ms": timing["median_ms"],
                "network": timing, "fps": round(1.0 / median_s, 2),
                "gmac_per_s": round(gmacs, 1) if gmacs is not None else None,
                "peak_gmac_per_s": peak if counted else None,
                "fraction_of_peak": round(gmacs / peak, 3) if counted else None}

    def _end_to_end(self, predictors, clips, grouping_maps: str, result) -> None:
        from ftpose import speed
        from ftpose.grouping import GroupingParams

        references = self._reference_maps(predictors, clips, grouping_maps, result)
        threshold = GroupingParams().peak_threshold
        stage_times = {key: speed.StageTimes() for key in predictors}
        keys = list(predictors)
        _status(f"end to end: {len(clips)} frame(s) x {len(keys)} pipeline(s)")
        for key in keys:      # warm-up at the frame size
            speed.run_pipeline(predictors[key], clips[0][0], 0.0, references[key][0])
        differences = {key: [] for key in keys}
        for i, (image, read_seconds) in enumerate(clips):
            maps = {}
            for key in keys if i % 2 == 0 else keys[::-1]:
                time.sleep(speed.SETTLE_SECONDS)
                stages, maps[key] = speed.run_pipeline(predictors[key], image, read_seconds, references[key][i])
                stage_times[key].add(stages)
            for model, backend in keys:
                if backend != "torch" and (model, "torch") in maps:
                    differences[model, backend].append(speed.compare_maps(maps[model, "torch"],
                                                                          maps[model, backend], threshold))
        for (model, backend), times in stage_times.items():
            summary = times.summary()
            entry = result["models"][model]["backends"][backend]
            entry["end_to_end_ms"] = summary["end_to_end_median_ms"]
            entry["end_to_end_fps"] = round(1e3 / summary["end_to_end_median_ms"], 2)
            entry["end_to_end"] = {k.removeprefix("end_to_end_"): v for k, v in summary.items()
                                   if k.startswith("end_to_end_")}
            entry["stages_ms"] = summary["stages_ms"]
            entry["grouped_maps"] = "own" if references[model, backend][0] is None else "teacher"
            if differences[model, backend]:
                rows = differences[model, backend]
                entry["vs_fp32_torch"] = {k: round(float(sum(r[k] for r in rows) / len(rows)), 5) for k in rows[0]}
                entry["vs_fp32_torch"]["heatmaps_max_diff"] = round(max(r["heatmaps_max_diff"] for r in rows), 5)
                entry["vs_fp32_torch"]["pafs_max_diff"] = round(max(r["pafs_max_diff"] for r in rows), 5)

    def _reference_maps(self, predictors, clips, grouping_maps: str, result) -> dict:
        """Per pipeline, per frame: the maps to group instead of its own (None: its own)."""
        use_teacher = {key: grouping_maps == "teacher" or (grouping_maps == "auto" and not predictor.trained)
                       for key, predictor in predictors.items()}
        none = [None] * len(clips)
        if not any(use_teacher.values()):
            return {key: none for key in predictors}
        from ftpose.downloads import WeightsUnavailableError
        from ftpose.predictor import Predictor

        _status("computing the teacher's maps of every frame (for grouping)")
        try:
            teacher = Predictor("teacher")
        except WeightsUnavailableError as e:
            if grouping_maps == "teacher":
                raise
            result["grouping_maps_note"] = (f"the teacher is unavailable ({e}); untrained networks' own maps were "
                                            "grouped, which is not what a trained network's grouping costs")
            return {key: none for key in predictors}
        maps = [teacher.maps(image) for image, _ in clips]
        result["grouping_maps_note"] = ("untrained networks' maps are noise; their end-to-end grouping stage "
                                        "decodes the trained teacher's maps of the same frame")
        return {key: maps if use_teacher[key] else none for key in predictors}

    def _memory(self, photos, result) -> None:
        import torch

        from ftpose import speed

        threads = torch.get_num_threads()
        _status("peak memory: one fresh process per model and backend")
        result["idle_process_mb"] = round(speed.peak_memory_mb("", None, self.size, threads), 1)
        sources = {entry["source"]: name for name, entry in result["models"].items()}
        for model in self.models:
            name = sources[str(model)]
            for backend in self.backends_of[model]:
                peak = speed.peak_memory_mb(model, backend, self.size, threads, photos)
                result["models"][name]["backends"][backend]["peak_memory_mb"] = round(peak, 1)


def ratios(result: dict) -> dict:
    """openpose/ftnet-style ratios for every pair of models, and every backend's speed-up over ``torch``."""
    out = {"between_models": {}, "over_torch": {}}
    models = list(result["models"])
    for i, fast in enumerate(models):
        for slow in models[i + 1:]:
            for backend, entry in result["models"][fast]["backends"].items():
                for other_backend, other in result["models"][slow]["backends"].items():
                    # the same backend for both, or a foreign network's own runtime against every backend
                    if other_backend == backend or NATIVE_BACKEND in (backend, other_backend):
                        label = backend if other_backend == backend else f"{other_backend}/{backend}"
                        out["between_models"].setdefault(f"{slow}/{fast}", {})[label] = _speedups(other, entry)
    for model, model_entry in result["models"].items():
        base = model_entry["backends"].get("torch")
        for backend, entry in model_entry["backends"].items():
            if base and backend != "torch":
                out["over_torch"].setdefault(model, {})[backend] = _speedups(base, entry)
    return out


def _speedups(slow: dict, fast: dict) -> dict:
    return {kind: round(slow[f"{kind}_ms"] / fast[f"{kind}_ms"], 3)
            for kind in ("network", "end_to_end") if f"{kind}_ms" in slow and f"{kind}_ms" in fast}


def render(result: dict) -> str:
    """The human-readable report of one ``ftpose bench`` result."""
    m = result["machine"]
    height, width = result["input"]
    openvino = f", openvino {m['openvino']}" if m.get("openvino") else ""
    lines = [f"{m['cpu']} ({m['logical_cpus']} logical CPUs), {m['threads']} threads, torch {m['torch']}, "
             f"onnxruntime {m['onnxruntime']}{openvino}; 1-min load average {m['load_average']} before, "
             f"{m.get('load_average_after', '?')} after",
             "",
             f"Network at {height}x{width}: median of {result['runs']} interleaved runs after {result['warmup']} "
             f"warm-up (p25-p75)"]
    header = (f"{'model':<9} {'params':>7} {'MB':>6} {'GMAC':>6}  {'backend':<16} {'ms':>7} {'p25-p75':>13} "
              f"{'FPS':>6} {'GMAC/s':>7} {'peak':>5} {'mem MB':>7}")
    lines += [header, "-" * len(header)]
    for name, entry in result["models"].items():
        first = True
        for backend, b in entry["backends"].items():
            counted = entry["params"] is not None
            left = (f"{name:<9} {entry['params'] / 1e6:>6.2f}M {entry['size_mb']:>6.1f} {entry['macs'] / 1e9:>6.1f}"
                    if first and counted else f"{name:<9} {'-':>7} {'-':>6} {'-':>6}" if first else " " * 31)
            spread = f"{b['network']['p25_ms']:.0f}-{b['network']['p75_ms']:.0f}"
            peak = f"{100 * b['fraction_of_peak']:.0f}%" if b.get("fraction_of_peak") is not None else "-"
            mem = f"{b['peak_memory_mb']:.0f}" if "peak_memory_mb" in b else "-"
            gmacs = f"{b['gmac_per_s']:.0f}" if b.get("gmac_per_s") is not None else "-"
            label = f"{backend} ({entry['runtime']})" if backend == NATIVE_BACKEND else backend
            lines.append(f"{left}  {label:<16} {b['network_ms']:>7.1f} {spread:>13} {b['fps']:>6.2f} "
                         f"{gmacs:>7} {peak:>5} {mem:>7}")
            first = False
    if "idle_process_mb" in result:
        lines.append(f"(peak: share of this CPU's {result['machine']['threads']}-thread peak at the backend's "
                     f"precision; mem: peak RSS of a fresh process running it, an idle one takes "
                     f"{result['idle_process_mb']:.0f} MB)")
    lines += ["", "Grouping (decoder on ground-truth maps of upright people, stride 8, 46x54 cells)"]
    for n, g in result["grouping"].items():
        lines.append(f"  {n:>2} people: median {g['median_ms']:.2f} ms (p25-p75 {g['p25_ms']:.2f}-{g['p75_ms']:.2f}), "
                     f"{g['found']} found")
    src = result["source"]
    lines += ["", f"End to end over {src['frames']} frame(s) of {src['path']} ({src['size'][0]}x{src['size'][1]}), "
                  "median ms per frame"]
    from ftpose.speed import STAGES

    header = f"{'model':<9} {'backend':<16} " + " ".join(f"{s:>10}" for s in STAGES) + f" {'total':>8} {'FPS':>6}"
    lines += [header, "-" * len(header)]
    for name, entry in result["models"].items():
        for backend, b in entry["backends"].items():
            stages = " ".join(f"{b['stages_ms'].get(s, 0):>10.1f}" for s in STAGES)
            lines.append(f"{name:<9} {backend:<16} {stages} {b['end_to_end_ms']:>8.1f} {b['end_to_end_fps']:>6.2f}")
    if "grouping_maps_note" in result:
        lines.append(f"({result['grouping_maps_note']})")
    changes = [(name, backend, b["vs_fp32_torch"]) for name, entry in result["models"].items()
               for backend, b in entry["backends"].items() if "vs_fp32_torch" in b]
    if changes:
        lines += ["", "Output change against fp32 torch, same network and frames (mean over frames; max diff: worst)"]
        for name, backend, d in changes:
            lines.append(f"  {name:<9} {backend:<16} heatmaps max {d['heatmaps_max_diff']:.4f} mean "
                         f"{d['heatmaps_mean_diff']:.5f}; PAFs max {d['pafs_max_diff']:.4f} mean "
                         f"{d['pafs_mean_diff']:.5f}; peaks found {100 * d['peak_recall']:.1f}%, "
                         f"extra {100 * (1 - d['peak_precision']):.1f}% (of {d['peaks']:.0f})")
    lines += ["", "Ratios (network, end to end)"]
    for pair, by_backend in result["ratios"]["between_models"].items():
        for backend, r in by_backend.items():
            lines.append(f"  {pair:<18} {backend:<16} {r.get('network', 0):.2f}x  {r.get('end_to_end', 0):.2f}x")
    for model, by_backend in result["ratios"]["over_torch"].items():
        for backend, r in by_backend.items():
            lines.append(f"  {model + ' torch/' + backend:<35} {r.get('network', 0):.2f}x  "
                         f"{r.get('end_to_end', 0):.2f}x")
    return "\n".join(lines)


def _status(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
