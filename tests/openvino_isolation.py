"""Pytest plugin: tests marked ``@pytest.mark.openvino`` run in a child Python process.

With OpenVINO loaded in the same pytest process as torch and ONNX Runtime, full-suite
runs died of a segmentation fault in 2 of 3 runs, at different tests and never in an
OpenVINO test (README, "Speed").  So the main pytest process never imports
``openvino``: it runs the marked tests of a module together as ``python -m pytest
NODEID...`` in a child (where ``$FTPOSE_OPENVINO_CHILD`` names the file the child
writes its reports to), then reports the child's results as its own: passes, skips
with their reasons, failures with the child's traceback and output.  A child that
dies (a crash) fails the test it was running, with the child's output; the module's
remaining marked tests then run in a new child.

Fixtures of marked tests only run in the child, so a fixture may import OpenVINO;
anything else must not (skip checks use ``importlib.util.find_spec``).  A test that
loads OpenVINO in the main process without the mark fails, saying so.

Registered by ``tests/conftest.py``; other sessions use ``-p openvino_isolation``.
Setting ``$FTPOSE_OPENVINO_CHILD`` by hand (e.g. to ``/dev/null``) makes a session run the
marked tests in its own process, as a child does: to debug one, or to measure what the
children cost.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from pytest import TestReport

MARK = "openvino"
CHILD_REPORTS = "FTPOSE_OPENVINO_CHILD"   # set in the child: where it writes its reports
OUTPUT_TAIL = 6000                        # characters of a dead child's output shown in the failure
_results = pytest.StashKey[dict]()        # nodeid -> the child's reports for it, until reported
_flagged = pytest.StashKey[bool]()        # a test that loaded OpenVINO here has been failed


def in_child() -> bool:
    return CHILD_REPORTS in os.environ


def pytest_configure(config):
    config.addinivalue_line("markers", f"{MARK}: loads OpenVINO; runs in a child Python process "
                                       "(tests/openvino_isolation.py)")
    config.stash[_results] = {}
    if in_child():
        config.pluginmanager.register(_ReportsToParent(config, Path(os.environ[CHILD_REPORTS])))


def pytest_runtest_protocol(item, nextitem):
    if in_child() or item.get_closest_marker(MARK) is None:
        return None
    results = item.config.stash[_results]
    if item.nodeid not in results:
        results.update(_run_in_child(item))
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in results.pop(item.nodeid):
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """In the main process: the first test phase after which OpenVINO is loaded fails, saying why."""
    report = yield
    config = item.config
    # (a None entry is a test making `import openvino` fail on purpose)
    if not in_child() and sys.modules.get("openvino") is not None and not config.stash.get(_flagged, False):
        config.stash[_flagged] = True
        report.outcome = "failed"
        report.longrepr = (f"openvino was imported in the main pytest process by {item.nodeid}, its fixtures or "
                           f"a test module's imports: mark the tests that load it @pytest.mark.{MARK}, so they "
                           "run in a child process (tests/openvino_isolation.py)")
    return report


class _ReportsToParent:
    """The child's side: every test report goes to the parent's file, one JSON object a line."""

    def __init__(self, config, path: Path):
        self.config, self.path = config, path

    def pytest_runtest_logreport(self, report):
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(data) + "\n")


def _run_in_child(item) -> dict[str, list[TestReport]]:
    """Runs ``item`` and the marked tests after it in its module in one child; their reports by nodeid.

    Only the tests the child finished are returned, and the first one it did not finish
    (the one it died in, or could not run) with a failure showing the child's output.
    """
    items, config = item.session.items, item.config
    batch = [i for i in items[items.index(item):] if i.path == item.path and i.get_closest_marker(MARK)]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", __name__,
               "--rootdir", str(config.rootpath)]
    if config.inipath is not None:
        command += ["-c", str(config.inipath)]
    # this plugin is loaded before any conftest puts its folder on sys.path
    python_path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="ftpose-openvino-") as folder:
        reports_path = Path(folder) / "reports.jsonl"
        reports_path.touch()
        env = {**os.environ, "PYTHONPATH": python_path, CHILD_REPORTS: str(reports_path)}
        child = subprocess.run([*command, *(i.nodeid for i in batch)], cwd=config.rootpath, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        lines = reports_path.read_text(encoding="utf-8").splitlines()
    reports: dict[str, list[TestReport]] = {}
    for line in lines:
        report = config.hook.pytest_report_from_serializable(config=config, data=json.loads(line))
        if isinstance(report.longrepr, list):   # a skip's (path, line, reason), which JSON made a list
            report.longrepr = tuple(report.longrepr)
        reports.setdefault(report.nodeid, []).append(report)
    finished = {nodeid: r for nodeid, r in reports.items() if r[-1].when == "teardown"}
    unfinished = next((i for i in batch if i.nodeid not in finished), None)
    if unfinished is not None:
        finished[unfinished.nodeid] = _child_died(unfinished, child)
    return finished


def _child_died(item, child: subprocess.CompletedProcess) -> list[TestReport]:
    """Reports failing ``item``, which its child process did not finish."""
    message = (f"the child process running {item.nodeid} ended (exit status {child.returncode}) before the "
               f"test finished; the end of its output:\n{child.stdout[-OUTPUT_TAIL:]}")
    keywords = {name: 1 for name in item.keywords}
    return [TestReport(item.nodeid, item.location, keywords, "passed", None, "setup"),
            TestReport(item.nodeid, item.location, keywords, "failed", message, "call"),
            TestReport(item.nodeid, item.location, keywords, "passed", None, "teardown")]
