"""Supervises the pipeline's processes: restarts them after a crash, or after a kill fault heals."""

from __future__ import annotations

import threading
import time
from typing import Callable

from chaos.env.processes import ManagedProcess
from chaos.history import History

Factory = Callable[[int], ManagedProcess]
"""Starts incarnation N of a process."""


class Supervisor:
    def __init__(self, history: History, restart_delay: float = 1.0):
        self.history = history
        self.restart_delay = restart_delay
        self._factories: dict[str, Factory] = {}
        self._procs: dict[str, ManagedProcess] = {}
        self._incarnations: dict[str, int] = {}
        self._held: set[str] = set()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._exit_codes: dict[str, int | None] = {}
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def start(self, name: str, factory: Factory) -> None:
        with self._lock:
            self._factories[name] = factory
            self._spawn(name)
        if not self._watcher.is_alive():
            self._watcher.start()

    def _spawn(self, name: str) -> None:
        incarnation = self._incarnations.get(name, 0) + 1
        self._incarnations[name] = incarnation
        proc = self._factories[name](incarnation)
        self._procs[name] = proc
        self.history.append("process.start", process=name, pid=proc.pid, incarnation=incarnation)

    def kill(self, name: str) -> None:
        """SIGKILL the process and keep it down until `release`."""
        with self._lock:
            self._held.add(name)
            proc = self._procs[name]
            proc.kill()
            self.history.append("process.kill", process=name, pid=proc.pid)

    def release(self, name: str) -> None:
        with self._lock:
            self._held.discard(name)
            if self._procs[name].poll() is not None and not self._stopping.is_set():
                self._spawn(name)

    def restarts(self, name: str) -> int:
        return self._incarnations.get(name, 1) - 1

    def _watch(self) -> None:
        while not self._stopping.wait(0.2):
            with self._lock:
                crashed = [n for n, p in self._procs.items() if p.poll() is not None and n not in self._held]
                for name in crashed:
                    proc = self._procs[name]
                    self.history.append("process.exit", process=name, pid=proc.pid, code=proc.poll())
                    proc.stop(grace=0)
            for name in crashed:
                if self._stopping.wait(self.restart_delay):
                    return
                with self._lock:
                    if name not in self._held and self._procs[name].poll() is not None:
                        self._spawn(name)

    def stop_all(self, grace: float = 15.0) -> dict[str, int | None]:
        """Stop supervising, then stop every process gracefully; returns their exit codes."""
        if self._stopping.is_set():
            return self._exit_codes
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join(5)
        with self._lock:
            self._exit_codes = {name: proc.stop(grace) for name, proc in self._procs.items()}
        for name, code in self._exit_codes.items():
            self.history.append("process.stop", process=name, code=code)
        return self._exit_codes
