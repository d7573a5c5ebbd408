"""The sink's output directory served through lazyfs for one run: mounted before the pipeline
starts, unmounted after the checks have read it.

The data lives in a backing directory beside it while mounted; on the way out every write still in
memory is persisted (a clean shutdown), the filesystem is unmounted, and the backing directory takes
the output directory's place, so that the run directory looks as it does without lazyfs. The
control socket lives in a directory of its own under the system's temporary directory: a Unix
socket's path is short, a run directory's may not be.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

from chaos.env.processes import ManagedProcess, tail
from chaos.errors import EnvironmentFailure
from drivers.sdk.events import Event

MOUNT_TIMEOUT = 20.0
"""Seconds the lazyfs process may take to mount."""
CONTROL_TIMEOUT = 10.0


class LazyMount:
    def __init__(self, directory: Path, logs: Path, record: Callable[..., Any]):
        """`record(event, **fields)` puts what a loss did on the run's history."""
        self.directory = directory
        self.backing = directory.with_name(f".lazyfs-{directory.name}")
        self.log = logs / "lazyfs.log"
        self.record = record
        self._control_dir: Path | None = None
        self._process: ManagedProcess | None = None
        self._fusermount = ""

    @property
    def control(self) -> Path:
        assert self._control_dir is not None
        return self._control_dir / "control"

    def __enter__(self) -> "LazyMount":
        fusermount = shutil.which("fusermount3")
        if fusermount is None or not Path("/dev/fuse").exists():
            raise EnvironmentFailure("losing unfsynced writes needs FUSE: /dev/fuse and fusermount3 (Debian: "
                                     "apt-get install fuse3)")
        self._fusermount = fusermount
        self.directory.mkdir(parents=True, exist_ok=True)
        os.replace(self.directory, self.backing)  # whatever is there already stays, below the mount
        self.directory.mkdir()
        self._control_dir = Path(tempfile.mkdtemp(prefix="chaos-lazyfs-"))
        self._process = ManagedProcess("lazyfs", [sys.executable, "-m", "chaos.env.lazyfs", str(self.backing),
                                                  str(self.directory), str(self.control)], self.log)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not (os.path.ismount(self.directory) and self.control.exists()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise EnvironmentFailure(f"lazyfs did not mount {self.directory} within {MOUNT_TIMEOUT:.0f}s",
                                         tail(self.log))
            time.sleep(0.05)
        return self

    def command(self, name: str) -> int:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(CONTROL_TIMEOUT)
            client.connect(str(self.control))
            client.sendall(name.encode())
            return int(client.recv(64).decode().strip() or -1)

    def lose_unfsynced(self) -> int:
        files = self.command("drop")
        self.record(Event.STORAGE_LOST_WRITES, files=files, directory=self.directory.name)
        return files

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                self.command("sync")
            except OSError:
                pass  # then what was never fsynced is lost, as after a crash
        if os.path.ismount(self.directory):
            unmounted = subprocess.run([self._fusermount, "-u", str(self.directory)], capture_output=True, timeout=30)
            if unmounted.returncode != 0:
                subprocess.run([self._fusermount, "-uz", str(self.directory)], capture_output=True, timeout=30)
        if self._process is not None:
            self._process.stop(grace=5)
        if self._control_dir is not None:
            shutil.rmtree(self._control_dir, ignore_errors=True)
        if self.backing.is_dir() and not os.path.ismount(self.directory):
            os.rmdir(self.directory)
            os.replace(self.backing, self.directory)
