"""Shared test fixtures.

Real data lives in ``../shared/data`` beside the project (or ``$FTPOSE_TEST_DATA``);
tests that need it skip with a message saying so when it is absent.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# tests marked @pytest.mark.openvino run in a child process: OpenVINO never loads in this one
pytest_plugins = ["openvino_isolation"]

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FTPOSE_TEST_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; skips the test when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set FTPOSE_TEST_DATA to its location)")
    return SHARED_DATA


SHARED_MODELS = Path(os.environ.get("FTPOSE_TEST_MODELS", ROOT.parent / "shared" / "models"))
INTEL_IR = SHARED_MODELS / "human-pose-estimation-0001" / "FP16-INT8" / "human-pose-estimation-0001.xml"


@pytest.fixture(scope="module")
def photo():
    """The bundled sample photo (COCO 000000000790, four people), uint8 BGR; one copy per test module."""
    from ftpose.files import SAMPLE_PHOTO, read_image

    return read_image(SAMPLE_PHOTO)


@pytest.fixture(scope="session")
def intel_ir() -> Path:
    """Intel's Lightweight OpenPose IR (a development network, never shipped); skips when absent.

    Tests using it load OpenVINO: mark them ``@pytest.mark.openvino``."""
    if not INTEL_IR.is_file():
        pytest.skip(f"Intel's human-pose-estimation-0001 IR not found at {INTEL_IR} (set FTPOSE_TEST_MODELS)")
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("OpenVINO IR files need the openvino extra: pip install -e '.[openvino]'")
    return INTEL_IR


@pytest.fixture(scope="session")
def pose_server(tmp_path_factory):
    """``ftpose serve`` (the default model, one thread, 1 MiB upload limit) on a free loopback port.

    Started as a user would, in its own process with the default host; yields
    ``(base_url, log_path)`` and stops it at the end of the session.
    """
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "ftpose", "serve", "--port", str(port), "--threads", "1",
                                    "--max-upload-mb", "1"], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"ftpose serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    yield url, log
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
