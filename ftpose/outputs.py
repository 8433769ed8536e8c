"""Where a run's outputs go: under names no two inputs share, inside ``--out``, never onto an input.

Three rules keep a run from destroying a user's files:

- **Names**: an output replaces its input's suffix (``scan.jpg`` and ``scan.PNG`` would
  both draw ``scan.jpg``) and some file systems ignore case, so :func:`unique_names`
  gives ``_2``, ``_3``... to every name whose stem another input already has,
  case-insensitively, choosing numbers no other input's name uses either.
- **Confinement**: :meth:`Outputs.path` only makes paths inside the output folder; a
  name with ``..`` or an absolute part is refused (a folder argument ``..`` is named
  after the folder it means, see ``ftpose.sources``).
- **Inputs are read-only**: an output path that is an input file (the same file, by
  device and inode, so links and case-insensitive names are caught too) is refused,
  for that input alone.

Results files are written under a lock (:func:`results_lock`; the COCO results and
their meta as one pair by ``ftpose.writers.write_coco_results``), and the folders are
checked writable before any compute (:func:`check_writable`).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ftpose.files import InputError


def unique_names(names: Sequence[Path]) -> list[Path]:
    """``names`` with ``_2``, ``_3``... added to each stem that an earlier name already has.

    Stems are compared case-insensitively; a renamed stem also avoids every other
    name's own stem, so ``scan.jpg, scan.png, scan_2.jpg`` become ``scan.jpg,
    scan_3.png, scan_2.jpg``.
    """
    def stem(name: Path) -> str:
        return str(name.with_suffix("")).casefold()

    taken = {stem(name) for name in names}
    seen: set[str] = set()
    out = []
    for name in names:
        if stem(name) in seen:
            base, number = name.with_suffix("").name, 2
            while stem(name.with_name(f"{base}_{number}{name.suffix}")) in taken:
                number += 1
            name = name.with_name(f"{base}_{number}{name.suffix}")
            taken.add(stem(name))
        seen.add(stem(name))
        out.append(name)
    return out


def _identity(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of an existing file, else None."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class Outputs:
    """The outputs of a run over ``sources``, in the folder ``root`` (None: no output folder).

    :meth:`path` names a source's output; :meth:`guard` checks any other output path
    (``--json``) against the inputs.  Both raise :class:`~ftpose.files.InputError`
    naming the input that would be lost, so a batch reports it and goes on.
    """

    def __init__(self, sources: Iterable, root: Path | None = None):
        self.root = None if root is None else Path(root)
        self._inputs = {}
        for source in sources:
            identity = _identity(Path(source.path))
            if identity is not None:
                self._inputs[identity] = Path(source.path)

    def path(self, source, suffix: str) -> Path:
        """``root / NAME + suffix`` for ``source`` (``NAME``: its name without suffix)."""
        name = Path(source.name).with_suffix(suffix)
        if name.is_absolute() or ".." in name.parts:
            raise InputError(source.path, f"its output name {name} would leave the output folder")
        return self.guard(self.root / name, source.path)

    def guard(self, path: Path, owner: Path | None = None) -> Path:
        """``path``, unless writing it would replace an input file (the error names ``owner``, whose output it is)."""
        victim = self._inputs.get(_identity(Path(path)))
        if victim is not None and owner is None:
            raise InputError(path, "is one of the inputs: writing results there would destroy it")
        if victim is not None:
            raise InputError(owner, f"its output {path} would overwrite the input {victim}; choose another --out")
        return Path(path)


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it: an :class:`InputError` now, not after the compute."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except FileExistsError:
        raise InputError(folder, "is a file, not a folder") from None
    except OSError as e:
        if e.errno == errno.ENOTDIR:
            raise InputError(folder, "cannot be a folder: a part of its path is a file") from None
        raise InputError(folder, f"cannot write outputs here ({e.strerror or e})") from None


@contextlib.contextmanager
def results_lock(path: Path) -> Iterator[None]:
    """Hold a lock on what the run writes, a folder (``.ftpose.lock`` in it) or a file
    (``.NAME.lock`` beside it); a second run into it is refused at once.

    Two runs writing the same results (or overlays in the same folder) would each
    replace the other's files and could pair one run's JSON with the other's meta.
    The lock file is removed on release; whoever locks a file that was meanwhile
    removed retries on the new one, so two runs never both hold the lock.
    """
    path = Path(path)
    lock = path / ".ftpose.lock" if path.is_dir() else path.with_name(f".{path.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(path, f"another run is writing these outputs (it holds {lock}); wait for it to "
                                   "finish or choose another --out / --json") from None
        if _identity(lock) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
            break
        os.close(fd)   # locked a file another run has just removed: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def meta_path(results: Path) -> Path:
    """``predictions.json`` -> ``predictions.meta.json``."""
    results = Path(results)
    return results.with_name(results.stem + ".meta.json")
