"""tools/check_imports.py: ftpose has no import cycles and no library module imports ftpose.cli."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "check_imports.py"


def check(package: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), str(package)], capture_output=True, text=True, timeout=60)


def test_ftpose_has_no_import_cycle_and_no_library_import_of_the_cli():
    result = check(ROOT / "ftpose")
    assert result.returncode == 0, result.stdout + result.stderr


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_cycles_through_lazy_and_relative_imports_and_cli_imports_are_reported(tmp_path):
    package = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/__main__.py": "from pkg.cli import main\n",            # the entry point may
        "pkg/predictor.py": "from pkg.export.backends import run\n",
        "pkg/export/__init__.py": "",
        "pkg/export/backends.py": "def run():\n    from ..predictor import prepare\n",   # lazy, relative
        "pkg/data/__init__.py": "",
        "pkg/data/coco.py": "from pkg.evaluation import coco\n",
        "pkg/evaluation/__init__.py": "",
        "pkg/evaluation/coco.py": "import numpy\n",
        "pkg/evaluation/mpii.py": "from pkg.data.coco import x\nfrom typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from pkg.cli import y\n",
        "pkg/cli/__init__.py": "",
        "pkg/speed.py": "import pkg.cli.bench\n",
        "pkg/cli/bench.py": "from pkg import speed\n",
    })
    result = check(package)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "module cycle: pkg.export.backends <-> pkg.predictor" in lines
    assert "package cycle: pkg.export <-> pkg.predictor (pkg.export.backends -> pkg.predictor; " \
           "pkg.predictor -> pkg.export.backends)" in lines
    assert "package cycle: pkg.data <-> pkg.evaluation (pkg.data.coco -> pkg.evaluation.coco; " \
           "pkg.evaluation.mpii -> pkg.data.coco)" in lines
    assert "pkg.speed imports the command line (pkg.cli.bench)" in lines
    assert not any("pkg.__main__" in line or "pkg.evaluation.mpii imports" in line for line in lines)


def test_a_package_without_cycles_passes(tmp_path):
    package = write(tmp_path, {"pkg/__init__.py": "from pkg import a\n", "pkg/a.py": "from . import b\n",
                               "pkg/b.py": "import os\n"})
    result = check(package)
    assert result.returncode == 0 and "no import cycles" in result.stdout
