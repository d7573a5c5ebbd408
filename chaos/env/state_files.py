"""Writing an environment's state files safely: atomic replacement, and one update at a time."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file of this process and a rename: a reader sees the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class FileLock:
    """An exclusive lock (flock) on a lock file, across processes; its directory is created if needed."""

    def __init__(self, path: Path):
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def state_lock(workdir: Path) -> FileLock:
    """One update of an environment's state files at a time: `workdir/state.lock`."""
    return FileLock(workdir / "state.lock")
