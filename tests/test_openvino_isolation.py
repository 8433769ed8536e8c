"""The openvino mark (tests/openvino_isolation.py): marked tests run in a child process whose
results the main pytest process reports as its own, and OpenVINO never loads in the main process."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from openvino_isolation import CHILD_REPORTS

TESTS = Path(__file__).resolve().parent
needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason='openvino not installed (pip install -e ".[openvino]")')

# one test of each outcome, run by a session of their own
OUTCOMES = '''
import faulthandler
import os
import sys

import pytest


@pytest.mark.openvino
def test_passes():
    assert os.environ["{child}"]


@pytest.mark.openvino
def test_fails():
    print("printed in the child")
    assert 1 + 1 == 3


@pytest.mark.openvino
def test_crashes():
    faulthandler._sigsegv()


@pytest.mark.openvino
def test_skips():
    pytest.skip("no accelerator here")


@pytest.mark.openvino
def test_runs_after_the_crash():
    pass


def test_loads_openvino_without_the_mark():
    sys.modules["openvino"] = sys   # what `import openvino` leaves behind
'''


def run_pytest(*args: str, cwd: Path, python_path: Path | None = None) -> subprocess.CompletedProcess:
    """A pytest session of its own (and its children), without the installed plugins they do not need."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if python_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(python_path), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


@needs_openvino
@pytest.mark.openvino
def test_a_marked_test_runs_in_a_child_process_where_openvino_works():
    import openvino

    assert os.environ.get(CHILD_REPORTS)
    assert "CPU" in openvino.Core().available_devices


def test_openvino_is_not_loaded_in_this_process():
    """In the whole suite this runs after every OpenVINO test of the files before it."""
    assert "openvino" not in sys.modules
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert "libopenvino" not in maps.read_text()


@needs_openvino
def test_openvino_stays_out_of_the_main_process_after_a_marked_test_loaded_it():
    """A session of its own, so that a marked test surely loaded OpenVINO before the check."""
    tests = [f"{TESTS.name}/{Path(__file__).name}::{name}" for name in (
        "test_a_marked_test_runs_in_a_child_process_where_openvino_works", "test_openvino_is_not_loaded_in_this_process")]
    result = run_pytest("-q", *tests, cwd=TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_passes_failures_skips_and_crashes_in_children_are_reported_as_those_tests(tmp_path):
    (tmp_path / "test_outcomes.py").write_text(OUTCOMES.format(child=CHILD_REPORTS))
    result = run_pytest("-p", "openvino_isolation", "-rA", "test_outcomes.py", cwd=tmp_path, python_path=TESTS)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr     # tests failed; the session itself did not crash
    assert "PASSED test_outcomes.py::test_passes" in out
    assert "FAILED test_outcomes.py::test_fails" in out
    assert "assert (1 + 1) == 3" in out and "printed in the child" in out    # the child's traceback and output
    # the crash fails the test it happened in, shows the child's own report of it, and the tests after it still run
    assert "FAILED test_outcomes.py::test_crashes" in out
    assert "exit status -11" in out and "Fatal Python error: Segmentation fault" in out
    assert re.search(r"SKIPPED \[1\] test_outcomes.py:\d+: no accelerator here", out)
    assert "PASSED test_outcomes.py::test_runs_after_the_crash" in out
    assert "FAILED test_outcomes.py::test_loads_openvino_without_the_mark" in out
    assert "mark the tests that load it @pytest.mark.openvino" in out
    assert "3 failed, 2 passed, 1 skipped" in out
