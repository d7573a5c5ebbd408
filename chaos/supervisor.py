"""Supervises the pipeline's processes: restarts them after a crash, or after a kill fault heals.

One thread does all the spawning and the final stopping. That matters: a child asks the kernel
to kill it when its parent *thread* exits (PR_SET_PDEATHSIG), so a child spawned from a
short-lived thread, such as the fault schedule's, would die with that thread.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from chaos.env.processes import ManagedProcess
from chaos.history import History

Factory = Callable[[int], ManagedProcess]
"""Starts incarnation N of a process."""


class Supervisor:
    def __init__(self, history: History, restart_delay: float = 1.0, stop_grace: float = 15.0):
        self.history = history
        self.restart_delay = restart_delay
        self.stop_grace = stop_grace
        self._factories: dict[str, Factory] = {}
        self._procs: dict[str, ManagedProcess] = {}
        self._incarnations: dict[str, int] = {}
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
        self.history.append("process.terminate" if graceful else "process.kill", process=name, pid=proc.pid)
        proc.stop(grace=self.stop_grace) if graceful else proc.kill()

    def signal(self, name: str, sig: int, event: str) -> None:
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

    def restarts(self, name: str) -> int:
        return self._incarnations.get(name, 1) - 1

    def _loop(self) -> None:
        while not self._stopping.wait(0.1):
            now = time.monotonic()
            with self._lock:
                for name, proc in self._procs.items():
                    if proc.poll() is not None and name not in self._held and name not in self._restart_at:
                        self.history.append("process.exit", process=name, pid=proc.pid, code=proc.poll())
                        proc.stop(grace=0)
                        self._restart_at[name] = now + self.restart_delay
                due = [n for n, t in self._restart_at.items() if t <= now and n not in self._held]
                for name in due:
                    del self._restart_at[name]
                    self._spawn(name)
        with self._lock:
            # Reverse start order: workers stop before the coordinator they report to.
            self._exit_codes = {name: proc.stop(self.stop_grace) for name, proc in reversed(self._procs.items())}

    def _spawn(self, name: str) -> None:
        incarnation = self._incarnations.get(name, 0) + 1
        self._incarnations[name] = incarnation
        proc = self._factories[name](incarnation)
        self._procs[name] = proc
        self.history.append("process.start", process=name, pid=proc.pid, incarnation=incarnation)

    def stop_all(self) -> dict[str, int | None]:
        """Stop supervising, then stop every process gracefully; returns their exit codes."""
        if not self._stopping.is_set():
            self._stopping.set()
            self._thread.join(self.stop_grace + 10)
            for name, code in self._exit_codes.items():
                self.history.append("process.stop", process=name, code=code)
        return self._exit_codes
