"""Supervises the pipeline's processes: restarts them after a crash, or after a kill fault heals.

One thread does all the spawning and the final stopping. That matters: a child asks the kernel
to kill it when its parent *thread* exits (PR_SET_PDEATHSIG), so a child spawned from a
short-lived thread, such as the fault schedule's, would die with that thread.

The same thread follows the history for each incarnation's *ready* event (the coordinator
listening, a worker restored from its checkpoint). A process that keeps exiting before it was
ever ready, with no fault to explain it, is in a crash loop: it cannot start (a port taken, a
broken interpreter), which is the testbed's failure and not the connector's. The supervisor then
stops restarting it and says so (`failure`), and the runner ends the run as an environment
failure instead of judging a pipeline that never ran.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from chaos.env.processes import ManagedProcess
from drivers.sdk.history import History, HistoryTail
from drivers.sdk.crashpoints import CRASH_EXIT_CODE
from drivers.sdk.events import Event
from faults.injector import Heal

Factory = Callable[[int], ManagedProcess]
"""Starts incarnation N of a process."""

CRASH_LOOP_EXITS = 5
"""Consecutive exits before ever being ready (none explained by a fault) that make a crash loop."""


@dataclass(frozen=True)
class ProcessFailure:
    """Why the pipeline cannot run, through no fault of the connector: the run ends as an environment failure."""

    process: str
    reason: str
    log_tail: str = ""

    def describe(self) -> str:
        return f"{self.process} {self.reason}"


class Supervisor:
    def __init__(self, history: History, restart_delay: float = 1.0, stop_grace: float = 15.0,
                 ready_events: Mapping[str, str] | None = None,
                 on_ready: Callable[[str, dict[str, Any]], None] | None = None,
                 crash_loop_exits: int = CRASH_LOOP_EXITS):
        """`ready_events` maps a process name to the history event by which an incarnation says it
        is ready (it carries the incarnation's `pid`); `on_ready` is called with that event."""
        self.history = history
        self.restart_delay = restart_delay
        self.stop_grace = stop_grace
        self.ready_events = dict(ready_events or {})
        self.on_ready = on_ready
        self.crash_loop_exits = crash_loop_exits
        self.excused: Callable[[], bool] = lambda: False
        """Whether an exit right now may be a fault's doing (set by the runner once faults exist)."""
        self.failure: ProcessFailure | None = None
        self.failed = threading.Event()
        """Set once a process is in a crash loop, or could not be wired up when it was ready."""
        self._tail = HistoryTail(history.path)
        self._factories: dict[str, Factory] = {}
        self._procs: dict[str, ManagedProcess] = {}
        self._incarnations: dict[str, int] = {}
        self._ready: set[str] = set()
        self.ready_at: float | None = None
        """When the whole pipeline was first ready (wall clock), once it has been."""
        self._unready_exits: dict[str, int] = {}
        self._held: set[str] = set()
        self._restart_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._exit_codes: dict[str, int | None] = {}
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def start(self, name: str, factory: Factory, timeout: float = 30.0) -> None:
        """Start a process under supervision; returns once it has been spawned."""
        with self._lock:
            self._factories[name] = factory
            self._restart_at[name] = 0.0
        deadline = time.monotonic() + timeout
        while name not in self._procs and time.monotonic() < deadline:
            time.sleep(0.02)

    def hold_down(self, name: str, graceful: bool = False) -> None:
        """Stop the process (SIGKILL, or SIGTERM when `graceful`) and keep it down until `release`."""
        with self._lock:
            self._held.add(name)
            proc = self._procs[name]
        self.history.append(Event.PROCESS_TERMINATE if graceful else Event.PROCESS_KILL, process=name, pid=proc.pid)
        proc.stop(grace=self.stop_grace) if graceful else proc.kill()

    def signal(self, name: str, sig: int, event: Event) -> None:
        """Send a signal to the process's group, e.g. SIGSTOP and SIGCONT for a pause."""
        with self._lock:
            proc = self._procs[name]
        proc.signal(sig)
        self.history.append(event, process=name, pid=proc.pid)

    def release(self, name: str) -> None:
        """Let a killed process be restarted now."""
        with self._lock:
            self._held.discard(name)
            if self._procs[name].poll() is not None:
                self._restart_at[name] = 0.0

    def stop_process(self, name: str, graceful: bool) -> Heal:
        """A kill or terminate fault: the process stays down until the heal lets it restart."""
        self.hold_down(name, graceful)
        return lambda: self.release(name)

    def pause_process(self, name: str) -> Heal:
        """A pause fault: SIGSTOP the process's group; the heal sends SIGCONT."""
        self.signal(name, signal.SIGSTOP, Event.PROCESS_PAUSE)
        return lambda: self.signal(name, signal.SIGCONT, Event.PROCESS_RESUME)

    def pid(self, name: str) -> int | None:
        """The current incarnation's pid, or None before the first."""
        with self._lock:
            proc = self._procs.get(name)
        return proc.pid if proc is not None else None

    def restarts(self, name: str) -> int:
        return self._incarnations.get(name, 1) - 1

    def _loop(self) -> None:
        while not self._stopping.wait(0.1):
            self._follow_readiness()
            now = time.monotonic()
            with self._lock:
                for name, proc in self._procs.items():
                    if proc.poll() is not None and name not in self._held and name not in self._restart_at:
                        self._exited(name, proc, now)
                due = [n for n, t in self._restart_at.items() if t <= now and n not in self._held]
                for name in due:
                    del self._restart_at[name]
                    self._spawn(name)
        with self._lock:
            # Reverse start order: workers stop before the coordinator they report to.
            self._exit_codes = {name: proc.stop(self.stop_grace) for name, proc in reversed(self._procs.items())}

    def _follow_readiness(self) -> None:
        for event in self._tail.new_events():
            name = event.get("source")
            if self.ready_events.get(name) != event.get("event"):
                continue
            with self._lock:
                current = self._procs.get(name)
                if current is None or current.pid != event.get("pid"):
                    continue  # an earlier incarnation's word
                self._ready.add(name)
                self._unready_exits[name] = 0
                everyone = self.ready_at is None and self._ready >= set(self.ready_events)
            if everyone:
                self.ready_at = float(event.get("ts", time.time()))
                self.history.append(Event.PIPELINE_READY, processes=sorted(self.ready_events))
            if self.on_ready is not None:
                try:
                    self.on_ready(name, event)
                except Exception as e:  # noqa: BLE001 - the runner cannot reach its own proxies
                    self._fail(ProcessFailure(name, f"was ready, but could not be wired up: {e}"))

    def _exited(self, name: str, proc: ManagedProcess, now: float) -> None:
        """Record an exit, and restart the process after the delay unless it is in a crash loop."""
        code = proc.poll()
        self.history.append(Event.PROCESS_EXIT, process=name, pid=proc.pid, code=code)
        proc.stop(grace=0)
        if name in self.ready_events and name not in self._ready and code != CRASH_EXIT_CODE and not self.excused():
            self._unready_exits[name] = self._unready_exits.get(name, 0) + 1
            exits = self._unready_exits[name]
            if exits >= self.crash_loop_exits:
                self._held.add(name)  # no more restarts: it cannot start
                self.history.append(Event.PROCESS_CRASH_LOOP, process=name, exits=exits, code=code)
                self._fail(ProcessFailure(name, f"could not start: it exited {exits} times in a row (last exit "
                                                f"code {code}) before it was ever ready, with no fault to explain it",
                                          proc.log_tail()))
                return
        self._restart_at[name] = now + self.restart_delay

    def _fail(self, failure: ProcessFailure) -> None:
        if self.failure is None:
            self.failure = failure
        self.failed.set()

    def _spawn(self, name: str) -> None:
        incarnation = self._incarnations.get(name, 0) + 1
        self._incarnations[name] = incarnation
        proc = self._factories[name](incarnation)
        self._procs[name] = proc
        self._ready.discard(name)
        self.history.append(Event.PROCESS_START, process=name, pid=proc.pid, incarnation=incarnation)

    def stop_all(self) -> dict[str, int | None]:
        """Stop supervising, then stop every process gracefully; returns their exit codes."""
        if not self._stopping.is_set():
            self._stopping.set()
            self._thread.join(self.stop_grace + 10)
            for name, code in self._exit_codes.items():
                self.history.append(Event.PROCESS_STOP, process=name, code=code)
        return self._exit_codes
