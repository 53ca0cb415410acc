"""Atomic file writes shared by checkpoints, results and downloads."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file through ``write(fileobj)`` so that it appears whole or not at all.

    The data go to a temporary file in the same directory, are flushed to disk, and the
    file is renamed over ``path``. A process killed half-way leaves the old file (or none).
    The file gets the mode a plain ``open`` would give it (0666 less the umask).
    Under ``torch.distributed`` only rank 0 writes (the other ranks return the path at once),
    so results and checkpoints are written once however many processes run.
    """
    path = Path(path)
    if _rank() != 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the user's usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _rank() -> int:
    import sys

    if "torch" not in sys.modules:  # no torch imported: no process group either
        return 0
    from .distributed import rank_and_world_size

    return rank_and_world_size()[0]


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the classic read-and-restore
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) atomically to ``path``."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically to ``path``."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def ensure_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create the folder ``path`` if needed and prove it is writable; raise OSError if not."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    probe = out / f".write-test-{os.getpid()}"
    probe.write_text("ok")
    probe.unlink()
    return out


def check_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Raise OSError unless ``path`` is, or could be created as, a writable folder.

    Nothing is created: the nearest existing ancestor must be a folder this process can
    write into (a regular file on the way, or a read-only folder, is an error).
    """
    out = Path(path).absolute()
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OSError(f"{str(probe)!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OSError(f"{str(probe)!r} is not writable")
    return out
