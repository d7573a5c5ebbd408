"""Disk faults on a sink's file writes (EIO, ENOSPC or a stall), through a control file.

The worker's sink reads the control file before each write, fsync and rename (see
`drivers/sdk/diskfaults.py`); the harness writes it here to inject a fault and removes it to heal.
"""

from __future__ import annotations

import os
from pathlib import Path

from drivers.sdk.diskfaults import DiskFaultControl
from faults.catalog import DiskFault
from faults.injector import FaultContext, Heal


def inject(fault: DiskFault, context: FaultContext) -> Heal:
    return write_control(context.disk_control, fault.mode, fault.target, fault.stall_s)


def write_control(control_file: Path, mode: str, target: str, stall_s: float = 5.0) -> Heal:
    """Turn the fault on for `target` (`worker-0`, or `*` for every worker); returns the heal.

    The control file is written atomically (temporary file, fsync, rename, fsync of the
    directory), so a worker never reads half of it. Healing removes it; healing twice is a no-op.
    A later write to the same file replaces the fault, and either heal then removes it."""
    control_file = Path(control_file)
    fault = DiskFaultControl(mode=mode, target=target, stall_s=stall_s)  # validates
    directory = control_file.parent
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{control_file.name}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(fault.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, control_file)
    _fsync_dir(directory)

    def heal() -> None:
        control_file.unlink(missing_ok=True)
        _fsync_dir(directory)

    return heal


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
