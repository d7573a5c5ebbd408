"""How a service's process is started: on this machine, or in a container (`chaos/env/containers.py`).

Why one seam: the broker, Toxiproxy and their restarts are the same code on either backend; only
where the command line runs differs. A launcher starts a long-lived service, runs a one-shot tool
(Kafka's storage formatter), and says what extra environment a service starts with.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Protocol, Sequence

from chaos.env.clock_shim import service_clock_env
from chaos.env.processes import ManagedProcess
from chaos.errors import EnvironmentFailure


class ServiceRef(Protocol):
    """Where a service runs, found again from any harness: a `ProcessRef` or a `ContainerRef`."""

    pid: int
    start_time: int

    def alive(self) -> bool: ...

    def running(self) -> bool: ...

    def wait_gone(self, timeout: float) -> bool: ...

    def signal(self, sig: int) -> None: ...

    def stop(self, grace: float = 10.0) -> object: ...


class Service(Protocol):
    """A started service: a `ManagedProcess`, or a `ManagedContainer` that behaves as one."""

    name: str
    ref: ServiceRef

    def poll(self) -> int | None: ...

    def stop(self, grace: float = 10.0) -> int | None: ...

    def release(self) -> int | None: ...

    def log_tail(self, lines: int = 30) -> str: ...


class Launcher(Protocol):
    backend: str

    def spawn(self, name: str, argv: Sequence[str], log_path: Path, detached: bool,
              env: dict[str, str] | None = None) -> Service: ...

    def run(self, service: str, argv: Sequence[str], timeout: float) -> str: ...

    def service_env(self, workdir: Path, service: str) -> dict[str, str] | None: ...


class ProcessLauncher:
    """Services as child processes of the harness (the native backend)."""

    backend = "native"

    def spawn(self, name: str, argv: Sequence[str], log_path: Path, detached: bool,
              env: dict[str, str] | None = None) -> ManagedProcess:
        return ManagedProcess(name, argv, log_path, detached=detached, env=env)

    def run(self, service: str, argv: Sequence[str], timeout: float) -> str:
        return checked_output(subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout), argv)

    def service_env(self, workdir: Path, service: str) -> dict[str, str] | None:
        """Every service runs on the clock shim (a pass-through until a clock fault moves it)."""
        return service_clock_env(workdir, service)


def checked_output(proc: subprocess.CompletedProcess[str], argv: Sequence[str]) -> str:
    """A one-shot tool's stdout, or a failure naming the tool (its main class or binary and action)."""
    if proc.returncode != 0:
        what = " ".join(argv[3:5]) if len(argv) > 4 else " ".join(argv[:2])
        raise EnvironmentFailure(f"{what} failed (exit {proc.returncode})", (proc.stderr or proc.stdout)[-3000:])
    return proc.stdout
