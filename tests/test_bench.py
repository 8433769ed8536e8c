"""``ftpose bench`` and its measuring helpers: the right things are measured and reported."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tiny_networks import visible_network

from ftpose.cli import main
from ftpose.grouping import decode
from ftpose.models import save_weights
from ftpose.predictor import PoseMaps
from ftpose.speed import (STAGES, compare_maps, grouping_scene, interleaved, peak_memory_mb, read_frames,
                          summarize_times, time_grouping)


@pytest.mark.parametrize("people", [2, 10])
def test_grouping_scene_holds_complete_people_the_decoder_finds(people):
    heatmaps, pafs = grouping_scene(people)
    assert heatmaps.shape == (19, 46, 54) and pafs.shape == (38, 46, 54)
    found = decode(heatmaps, pafs)
    assert len(found) == people and (found.keypoints[..., 2] > 0.5).all()
    assert time_grouping(people, repeats=3)["found"] == people


def test_interleaving_alternates_the_order_and_summaries_are_in_ms():
    calls = []
    times = interleaved({"a": lambda x: calls.append("a"), "b": lambda x: calls.append("b")}, None, rounds=3,
                        warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    summary = summarize_times([0.001, 0.002, 0.004])
    assert summary["median_ms"] == 2.0 and summary["min_ms"] == 1.0 and summary["runs"] == 3


def test_map_comparison_counts_moved_peaks():
    heatmaps, pafs = grouping_scene(2)
    reference = PoseMaps(heatmaps, pafs, (8.0, 8.0))
    same = compare_maps(reference, PoseMaps(heatmaps.copy(), pafs.copy(), (8.0, 8.0)), 0.05)
    assert same["peak_recall"] == same["peak_precision"] == 1.0 and same["heatmaps_max_diff"] == 0.0
    moved = compare_maps(reference, PoseMaps(np.roll(heatmaps, 3, axis=2), pafs, (8.0, 8.0)), 0.05)
    assert moved["peak_recall"] == 0.0 and moved["peaks"] == 36


def test_read_frames_from_a_video_and_a_folder(shared_data):
    frames = read_frames(shared_data / "people" / "opencv-doc__vtest.avi", 3)
    assert len(frames) == 3 and frames[0][0].shape == (576, 768, 3) and all(s >= 0 for _, s in frames)
    mixed = read_frames(shared_data / "people", 6)      # sorted: 4 photos, then the video's frames
    assert [f.shape for f, _ in mixed] == [(600, 512, 3), (480, 640, 3), (480, 640, 3), (342, 548, 3)] + [(576, 768, 3)] * 2


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Tiny ftnet and openpose weights whose maps (and int8's error) are far from zero."""
    folder = tmp_path_factory.mktemp("weights")
    paths = []
    for name in ("ftnet", "openpose"):
        options = {"width_mult": 0.125} if name == "ftnet" else {"width_mult": 0.125, "stages": 2}
        save_weights(visible_network(name, **options), folder / f"{name}.safetensors")
        paths.append(folder / f"{name}.safetensors")
    return paths


def test_peak_memory_of_a_fresh_process_is_above_an_idle_one(tiny_weights):
    idle = peak_memory_mb("", None, (64, 64), 1)
    assert 50 < idle < peak_memory_mb(str(tiny_weights[0]), "torch", (64, 64), 1)


def test_bench_reports_every_model_and_backend(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("FTPOSE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, [
        "bench", "--models", ",".join(map(str, tiny_weights)), "--backend", "torch,onnxruntime,onnxruntime-int8",
        "--input", "64x96", "--runs", "2", "--warmup", "0", "--frames", "1", "--no-memory",
        "--grouping-maps", "own", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["models"]) == {"ftnet", "openpose"}
    for entry in report["models"].values():
        assert entry["trained"] and entry["params"] > 0 and entry["macs"] > 0
        for backend in ("torch", "onnxruntime"):
            numbers = entry["backends"][backend]
            assert numbers["network_ms"] > 0 and numbers["end_to_end_ms"] >= numbers["stages_ms"]["network"]
            assert set(numbers["stages_ms"]) == set(STAGES)
        assert entry["backends"]["onnxruntime"]["vs_fp32_torch"]["heatmaps_max_diff"] < 1e-4
        int8, fp32 = entry["backends"]["onnxruntime-int8"], entry["backends"]["torch"]
        assert int8["precision"] == "int8" and int8["peak_gmac_per_s"] == 4 * fp32["peak_gmac_per_s"]
        assert 0 < int8["vs_fp32_torch"]["heatmaps_max_diff"] < 1
    assert set(report["ratios"]["between_models"]["openpose/ftnet"]) == {"torch", "onnxruntime", "onnxruntime-int8"}
    assert "onnxruntime" in report["ratios"]["over_torch"]["ftnet"]
    assert "openvino" in report["machine"]     # its version, or None without the optional extra
    assert "Network at 64x96" in result.output and "End to end over 1 frame(s)" in result.output


@pytest.mark.parametrize("arguments, message", [
    (["--backend", "tflite"], "unknown backend 'tflite'"),
    (["--input", "60x96"], "multiples of 8"),
    (["--source", "nothing.avi"], "nothing.avi: no such file"),
])
def test_bench_bad_input_is_one_clear_line(arguments, message):
    result = CliRunner().invoke(main, ["bench", "--models", "ftnet", *arguments, "--runs", "1", "--no-memory"])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_network_files_are_timed_in_their_own_runtime_beside_ftpose_backends(tiny_weights, tmp_path, monkeypatch):
    """A network file (.onnx here; .xml and .pb alike) is one 'native' row: no ftpose backend
    applies to it, so it is compared against every backend of the other models."""
    from ftpose.export.onnx import export_onnx
    from ftpose.models import load_model

    monkeypatch.setenv("FTPOSE_CACHE_DIR", str(tmp_path / "cache"))
    network_file = tmp_path / "exported.onnx"
    export_onnx(load_model(tiny_weights[0]), network_file, input_size=(64, 96))
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, [
        "bench", "--models", f"{tiny_weights[0]},{network_file}", "--backend", "torch,onnxruntime",
        "--input", "64x96", "--runs", "2", "--warmup", "0", "--frames", "1", "--no-memory",
        "--grouping-maps", "own", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    foreign = report["models"]["exported"]
    assert foreign["runtime"] == "onnxruntime" and foreign["params"] is None and foreign["macs"] is None
    assert list(foreign["backends"]) == ["native"]
    assert foreign["backends"]["native"]["network_ms"] > 0 and foreign["backends"]["native"]["end_to_end_ms"] > 0
    assert set(report["ratios"]["between_models"]["exported/ftnet"]) == {"native/torch", "native/onnxruntime"}
    assert "native (onnxruntime)" in result.output
