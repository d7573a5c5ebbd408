"""Disk faults for a sink's file layer, switched on and off from outside the worker process.

The harness writes a small JSON control file (atomically: temporary file, fsync, rename; see
`faults/disk.py`) and removes it to heal:

    {"mode": "eio" | "enospc" | "stall", "stall_s": 5.0, "target": "worker-0" | "*"}

An absent file means a healthy disk. A sink that was given a `DiskFaults` calls
`check(worker_name, op)` right before each file operation on its data path (a write, an fsync of a
file or a directory, a rename). For `eio` and `enospc` the check raises the `OSError` the kernel
would have raised, so the sink's real error handling runs; for `stall` it blocks for `stall_s`
seconds (capped, and cut short by a heal) and then lets the operation proceed.

The check runs once per file operation, so reading the control file must be cheap: one `stat`
per call, and the file is parsed again only when its identity (device, inode, size, mtime)
changes. An atomic replace always produces a new inode, so a new fault is never missed.

There is no module-level state: every process (a worker) builds its own `DiskFaults` and hands it
to its sink.
"""

from __future__ import annotations

import errno
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

MODES = ("eio", "enospc", "stall")
_ERRNO = {"eio": errno.EIO, "enospc": errno.ENOSPC}


@dataclass(frozen=True)
class DiskFaultControl:
    """One active disk fault, as the control file describes it."""

    mode: str
    target: str
    """A process name (`worker-0`) or `*` for every process that reads the control file."""
    stall_s: float = 5.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not isinstance(self.target, str) or not self.target:
            raise ValueError(f"target must be a process name such as 'worker-0', or '*', not {self.target!r}")
        if (isinstance(self.stall_s, bool) or not isinstance(self.stall_s, (int, float))
                or not math.isfinite(self.stall_s) or self.stall_s < 0):
            raise ValueError(f"stall_s must be a finite number of seconds >= 0, not {self.stall_s!r}")

    def applies_to(self, worker_name: str) -> bool:
        return self.target == "*" or self.target == worker_name

    def to_json(self) -> str:
        return json.dumps({"mode": self.mode, "stall_s": float(self.stall_s), "target": self.target})

    @classmethod
    def from_json(cls, text: str) -> "DiskFaultControl":
        data: Any = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the control file must hold a JSON object")
        unknown = set(data) - {"mode", "stall_s", "target"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        if "mode" not in data or "target" not in data:
            raise ValueError("'mode' and 'target' are required")
        return cls(mode=data["mode"], target=data["target"], stall_s=data.get("stall_s", 5.0))


class DiskFaults:
    """Reads the control file (cheaply) and applies the fault it describes to file operations."""

    MAX_STALL_S = 30.0
    """A stall never blocks one operation longer than this, whatever the control file says."""
    POLL_S = 0.1
    """While stalling, how often to look whether the fault was healed (which ends the stall early)."""

    def __init__(self, control_file: Path, *, max_stall_s: float = MAX_STALL_S,
                 on_hit: Callable[[str, str, str], None] | None = None):
        """`on_hit(worker_name, op, mode)` is told of every operation the fault strikes: the
        evidence that it reached a write (the runtime records it in the history)."""
        self.control_file = Path(control_file)
        self.max_stall_s = max_stall_s
        self.on_hit = on_hit
        self._identity: tuple[int, int, int, int] | None = None
        self._fault: DiskFaultControl | None = None
        self.reads = 0
        """How many times the control file was parsed (the stat cache keeps this low)."""
        self.faulted: dict[str, int] = {}
        """Operations that failed or stalled because of a fault, by op name."""

    def current(self) -> DiskFaultControl | None:
        """The active fault, or None when the control file is absent (a healthy disk)."""
        try:
            st = os.stat(self.control_file)
        except FileNotFoundError:
            self._identity, self._fault = None, None
            return None
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if identity != self._identity:
            try:
                text = self.control_file.read_text()
            except FileNotFoundError:  # healed between the stat and the read
                self._identity, self._fault = None, None
                return None
            try:
                fault = DiskFaultControl.from_json(text)
            except (ValueError, TypeError) as e:
                # Written atomically by the harness, so this is a bug, not a torn read: fail loudly.
                raise ValueError(f"{self.control_file}: invalid disk-fault control file: {e}") from e
            self.reads += 1
            self._identity, self._fault = identity, fault
        return self._fault

    def check(self, worker_name: str, op: str, path: Path | str | None = None) -> None:
        """Call right before a file operation (`op`: write, fsync, fsync_dir, rename) by `worker_name`.

        Raises OSError(EIO) or OSError(ENOSPC), or stalls and returns, when a fault targets this
        process; returns at once otherwise."""
        fault = self.current()
        if fault is None or not fault.applies_to(worker_name):
            return
        self.faulted[op] = self.faulted.get(op, 0) + 1
        if self.on_hit is not None:
            self.on_hit(worker_name, op, fault.mode)
        if fault.mode == "stall":
            fault = self._stall(worker_name, min(fault.stall_s, self.max_stall_s))
            if fault is None or fault.mode == "stall":
                return  # stalled long enough, or healed: the operation proceeds
            # switched from stall to a failure mode while stalling: fail like that mode
        code = _ERRNO[fault.mode]
        message = f"{os.strerror(code)} (injected disk fault: {fault.mode} on {op} by {worker_name})"
        if path is None:
            raise OSError(code, message)
        raise OSError(code, message, str(path))

    def _stall(self, worker_name: str, seconds: float) -> DiskFaultControl | None:
        """Block for `seconds`, or until the fault no longer stalls this process (healed or
        changed); returns the fault that applies to this process at the end."""
        deadline = time.monotonic() + seconds
        fault = self.current()
        while fault is not None and fault.mode == "stall" and fault.applies_to(worker_name):
            left = deadline - time.monotonic()
            if left <= 0:
                return fault
            time.sleep(min(self.POLL_S, left))
            fault = self.current()
        return fault if fault is not None and fault.applies_to(worker_name) else None


def check_disk(disk: DiskFaults | None, who: str, op: str, path: Path | str | None = None) -> None:
    """`disk.check(who, op, path)` right before a file operation; nothing without a `disk` (the
    default everywhere: fault injection switched off)."""
    if disk is not None:
        disk.check(who, op, path)
