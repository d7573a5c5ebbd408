"""Clock faults: a process's wall clock moved while it runs, through the offset file its shim maps.

A process a clock fault targets is started with the clock shim preloaded (`chaos/env/chaos_clock.c`) and
`CHAOS_CLOCK_FILE` naming an 8-byte file: how far, in nanoseconds, its wall clock reads ahead of
true (behind when negative). A jump writes the offset once; a skew and a strobe keep rewriting it
from a thread of their own; every heal writes 0 again. The monotonic clock is never touched, so
the process's own timeouts and sleeps keep their length, as under a real NTP step.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path
from typing import Iterable

from faults.catalog import ClockFault, Fault
from faults.injector import FaultContext, Heal
from faults.targets import cluster_role

OFFSET = struct.Struct("=q")
"""The offset file's content: signed nanoseconds, in the machine's byte order (the shim's `int64_t`)."""
STEP = 0.05
"""How often a skew's drift and a strobe's flips are written: finer than any period a strobe may have."""


def clock_targets(faults: Iterable[Fault]) -> set[str]:
    """The processes whose clock some fault of the experiment moves: they start with the shim."""
    return {fault.target for fault in faults if isinstance(fault, ClockFault)}


def clock_file(directory: Path, process: str) -> Path:
    """Where `process`'s offset is, under a clock directory (the run's, or for a broker the environment's)."""
    return directory / f"{process}.offset"


def create_offset_file(path: Path) -> None:
    """A true clock to start from: the file must exist before the process maps it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(OFFSET.pack(0))


def write_offset(path: Path, seconds: float) -> None:
    """One aligned 8-byte write in place, so a reader sees the old offset or the new one."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, OFFSET.pack(round(seconds * 1e9)), 0)
    finally:
        os.close(fd)


def read_offset(path: Path) -> float:
    return OFFSET.unpack(path.read_bytes()[:OFFSET.size])[0] / 1e9


def offset_at(fault: ClockFault, elapsed: float) -> float:
    """The offset `elapsed` seconds into the fault: a skew's grows evenly to `offset` at the end of
    its duration; a strobe's is `offset` in its even periods and 0 in its odd ones."""
    if fault.mode == "skew":
        return fault.offset * min(max(elapsed, 0.0) / fault.duration, 1.0)
    if fault.mode == "strobe":
        return fault.offset if int(max(elapsed, 0.0) // fault.flip_every) % 2 == 0 else 0.0
    return fault.offset


def inject(fault: ClockFault, context: FaultContext) -> Heal:
    target = context.resolve_role(fault.target) if cluster_role(fault.target) else fault.target
    path = context.clock_file(target)
    if path is None or not path.exists():
        raise FileNotFoundError(f"{target} was not started with the clock shim: it has no offset file")
    if fault.mode == "jump":
        write_offset(path, fault.offset)
        return lambda: write_offset(path, 0.0)
    stop = threading.Event()
    driver = threading.Thread(target=_drive, args=(fault, path, stop), name=f"clock-{target}", daemon=True)
    driver.start()

    def heal() -> None:
        stop.set()
        driver.join(timeout=5)
        write_offset(path, 0.0)
    return heal


def _drive(fault: ClockFault, path: Path, stop: threading.Event) -> None:
    started = time.monotonic()
    while True:
        write_offset(path, offset_at(fault, time.monotonic() - started))
        if stop.wait(STEP):
            return
