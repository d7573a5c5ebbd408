"""Child processes in their own process groups, stopped on exit, Ctrl-C and harness crashes.

Every process the testbed starts goes through `spawn`. Each child leads a new session (so a
Ctrl-C in the terminal reaches the harness, which then stops the group deliberately) and, unless
it is meant to outlive the harness, asks the kernel to SIGKILL it if the harness dies first
(PR_SET_PDEATHSIG), so that even a SIGKILL of the harness leaves no orphan.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid`, to tell a live process from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


@dataclass(frozen=True)
class ProcessRef:
    """Enough to find and stop a process group later, even from another harness process."""

    pid: int
    start_time: int

    def alive(self) -> bool:
        """The process exists (a zombie included: it exists until its parent reaps it)."""
        return process_start_time(self.pid) == self.start_time

    def running(self) -> bool:
        """The process exists and has not exited: a zombie is dead, whoever has yet to reap it."""
        return self.alive() and not _is_zombie(self.pid)

    def wait_gone(self, timeout: float) -> bool:
        """Wait (bounded) until the process has exited; True if it has."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def signal(self, sig: int) -> None:
        """Signal the process's group (nothing once it is gone)."""
        _signal_group(self.pid, sig)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL it after `grace` seconds."""
        if not self.alive():
            return
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not self.alive() or _is_zombie(self.pid):
                break
            time.sleep(0.05)
        _signal_group(self.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _is_zombie(pid: int) -> bool:
    """True for a zombie, and for a pid that no longer exists."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def pid_running(pid: int) -> bool:
    """`pid` exists and is not a zombie. (A zombie still answers kill(pid, 0), as if it were alive.)"""
    return not _is_zombie(pid)


def signal_all(pids: list[int], sig: int) -> None:
    """Signal each process, ignoring one that is gone."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def signal_group(pgid: int, sig: int) -> None:
    """Signal a process group, ignoring one that is gone."""
    _signal_group(pgid, sig)


class ManagedProcess:
    """A child process group with its output captured to a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        detached: bool = False,
    ):
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(log_path, "ab")
        self.popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if detached else _die_with_parent,
        )
        start = process_start_time(self.popen.pid)
        self.ref = ProcessRef(self.popen.pid, start if start is not None else -1)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, sig)

    def stop(self, grace: float = 10.0) -> int | None:
        """Stop the whole group and reap the leader; returns its exit code."""
        if grace > 0 and self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            self.signal(signal.SIGCONT)  # a paused group cannot act on SIGTERM
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.popen.pid, signal.SIGKILL)
        try:
            code = self.popen.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        self._log.close()
        return code

    def kill(self) -> int | None:
        """SIGKILL the group at once, as a crash or an OOM kill would."""
        return self.stop(grace=0)

    def release(self) -> int | None:
        """Reap the process if it has exited and close its log, without signalling anything.

        For a handle whose process was replaced (a service killed and restarted by a fault): its pid
        may be reused once reaped, so signalling its group then could hit a stranger.
        """
        code = self.popen.poll()
        self._log.close()
        return code

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
