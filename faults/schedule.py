"""Runs the fault schedule: fires each fault when its trigger is met and heals it after its duration.

Every injection and heal goes on the timeline. `close` heals whatever is still active, so a run
that ends early, fails or is interrupted never leaves a fault behind.

Each heal runs on a thread of its own, outside the schedule's lock: restarting a killed service
takes seconds, and neither another fault's trigger nor the progress display (`active`) should wait
for it. A fault stays active until its heal has returned, and its duration counts from the end of
its injection (a clean shutdown takes a while).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from drivers.sdk.events import Event
from drivers.sdk.history import HistoryTail
from faults import clock, cluster, disk, files, network, power, process
from faults.catalog import (
    ClockFault,
    ClusterFault,
    CorruptFault,
    CrashFault,
    DiskFault,
    Fault,
    LoseUnfsyncedFault,
    NetworkFault,
    ProcessFault,
)
from faults.injector import FaultContext, Heal, Injector

SETTLE_SECONDS = 5.0
"""After a heal, how long a process exiting may still be the fault's doing (a restarted broker
catching up, a worker whose coordinator was down)."""

INJECTORS: dict[type, Injector] = {
    NetworkFault: network.inject,
    ProcessFault: process.inject,
    DiskFault: disk.inject,
    CorruptFault: files.inject,
    ClockFault: clock.inject,
    LoseUnfsyncedFault: power.inject,
    ClusterFault: cluster.inject,
}
"""Which injector a fault's family goes to (a model's nearest base class listed here)."""


def injector_for(fault: Fault) -> Injector:
    for family in type(fault).__mro__:
        if family in INJECTORS:
            return INJECTORS[family]
    raise TypeError(f"no injector for {fault.kind} faults")


class HistoryWriter(Protocol):
    path: Path

    def append(self, event: Event, **fields: Any) -> None: ...


class Progress(Protocol):
    """The workload's counters: record-count triggers read `produced`."""

    produced: int


@dataclass
class _Active:
    index: int
    fault: Fault
    heal: Heal
    until: float
    healing: bool = False


class FaultSchedule:
    def __init__(self, faults: Sequence[Fault], context: FaultContext, history: HistoryWriter, progress: Progress):
        self.faults = list(faults)
        self.context = context
        self.history = history
        self.progress = progress
        self._tail = HistoryTail(history.path)
        self._commits = 0
        self._ready_at: float | None = None
        self._crashed: set[str] = set()
        # Crash faults are armed inside the processes; indices stay those of the experiment file.
        self._pending = [i for i, f in enumerate(self.faults) if not isinstance(f, CrashFault)]
        self._horizon = max(((self.faults[i].at or self.faults[i].after_ready or 0) + self.faults[i].duration
                             for i in self._pending), default=0.0)
        self._active: list[_Active] = []
        self._firing = 0
        self._healers: list[threading.Thread] = []
        self._last_heal = float("-inf")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-schedule", daemon=True)
        self._start = 0.0
        self.errors: list[str] = []

    def start(self) -> None:
        self._start = time.monotonic()
        self._thread.start()

    def last_heal(self) -> float:
        """Seconds after the start (or after the pipeline is ready) by which every time-triggered
        fault has healed: a bound for waiting on them, not a moment."""
        return self._horizon

    def active(self) -> list[str]:
        with self._lock:
            return [f"{a.fault.kind} {a.fault.target}" for a in self._active]

    def disturbed(self, within: float = SETTLE_SECONDS) -> bool:
        """A fault is active, or healed less than `within` seconds ago: a process exiting now may be its doing."""
        with self._lock:
            return bool(self._active) or bool(self._firing) or time.monotonic() - self._last_heal < within

    def finished(self) -> bool:
        with self._lock:
            return not self._pending and not self._active and not self._firing

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.finished():
            time.sleep(0.1)
        return self.finished()

    def _due(self, fault: Fault, elapsed: float) -> bool:
        if fault.at is not None:
            return elapsed >= fault.at
        if fault.after_ready is not None:
            return self._ready_at is not None and time.time() >= self._ready_at + fault.after_ready
        if fault.at_commits is not None:
            return self._commits >= fault.at_commits
        if fault.after_crash is not None:
            return fault.after_crash in self._crashed
        return self.progress.produced >= (fault.at_records or 0)

    def _follow_history(self) -> None:
        """Count commits, fired crash points and the pipeline's ready moment from what the processes
        and the supervisor appended since the last look."""
        for event in self._tail.new_events():
            if event.get("event") == Event.CHECKPOINT_COMMITTED:
                self._commits += 1
            elif event.get("event") == Event.CRASH:
                self._crashed.add(event.get("point"))
            elif event.get("event") == Event.PIPELINE_READY:
                self._ready_at = float(event["ts"])

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._follow_history()
            now = time.monotonic()
            with self._lock:
                due = [i for i in self._pending if self._due(self.faults[i], now - self._start)]
                for index in due:
                    self._pending.remove(index)
                self._firing += len(due)
                expired = [a for a in self._active if now >= a.until and not a.healing]
                for active in expired:
                    active.healing = True
            for index in due:
                try:
                    self._fire(index)
                finally:
                    with self._lock:
                        self._firing -= 1
            for active in expired:
                healer = threading.Thread(target=self._heal, args=(active,), name=f"heal-{active.index}", daemon=True)
                self._healers.append(healer)
                healer.start()

    def _fire(self, index: int) -> None:
        fault = self.faults[index]
        fields = fault.model_dump(exclude_none=True)
        try:
            heal = injector_for(fault)(fault, self.context)
        except Exception as e:  # noqa: BLE001 - a failed injection is recorded, and fails the run
            self.errors.append(f"faults[{index}] ({fault.kind} {fault.target}) could not be injected: {e or repr(e)}")
            self.history.append(Event.FAULT_ERROR, index=index, error=str(e) or repr(e), **fields)
            return
        self.history.append(Event.FAULT_INJECT, index=index, produced=self.progress.produced, **fields)
        with self._lock:
            self._active.append(_Active(index, fault, heal, time.monotonic() + fault.duration))

    def _heal(self, active: _Active) -> None:
        """Heal a fault that this caller marked `healing` (so no one else heals it too)."""
        try:
            active.heal()
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"faults[{active.index}] could not be healed: {e}")
            self.history.append(Event.FAULT_ERROR, index=active.index, error=str(e))
        else:
            self.history.append(Event.FAULT_HEAL, index=active.index, kind=active.fault.kind, target=active.fault.target)
        finally:
            with self._lock:
                self._active.remove(active)
                self._last_heal = time.monotonic()

    def close(self, timeout: float = 300.0) -> None:
        """Stop firing, and heal everything still active. A heal in progress (a service restart) is
        waited for, within `timeout`."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for healer in self._healers:
            healer.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            remaining = [a for a in self._active if not a.healing]
            for active in remaining:
                active.healing = True
        for active in remaining:
            self._heal(active)
        with self._lock:
            pending, self._pending = self._pending, []
        for index in pending:
            fault = self.faults[index]
            self.history.append(Event.FAULT_SKIPPED, index=index, kind=fault.kind)
            self.errors.append(f"faults[{index}] ({fault.kind} {fault.target}) never fired: its trigger "
                               "was not reached before the run ended")
