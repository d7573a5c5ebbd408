"""What every fault injector shares: the heal it returns, and what it is handed to act on.

An injector is `inject(fault, context) -> Heal`: it turns the fault on and returns the function that
turns it off again. The context carries what the faults act on through small protocols, so that
`faults/` depends on nothing of the harness: the Toxiproxy client, the pipeline's processes (the
supervisor), the environment's services, the control file of the sinks' disk faults, where the
sinks' data files are, the processes' clock offsets, and the sink's output under lazyfs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from faults.toxiproxy import Toxiproxy

Heal = Callable[[], None]
"""Undoes one injected fault; healing twice is harmless."""


class ProcessControl(Protocol):
    """Stops and pauses named processes: the supervisor for the pipeline's, the environment for its services."""

    def stop_process(self, name: str, graceful: bool) -> Heal:
        """SIGKILL it (or stop it cleanly); the heal starts it again."""

    def pause_process(self, name: str) -> Heal:
        """SIGSTOP it; the heal resumes it."""


class ClusterControl(Protocol):
    """What a three-broker cluster offers the faults beyond stopping its nodes: its form, its
    elections, and waiting for its replicas."""

    separate_controllers: bool
    """The controllers run as processes of their own (`controller-0` ...), not inside the brokers."""

    def elect(self, role: str, unclean: bool) -> None:
        """Hold an election for the partition `role` names (`leader:input/<p>`), once it can be held."""

    def wait_in_sync(self) -> None:
        """Return once every partition has its full ISR again (bounded: raises when it does not)."""


class Storage(Protocol):
    """The sink's output as a power cut sees it: served through lazyfs, its unfsynced writes in memory."""

    def lose_unfsynced(self) -> int:
        """Forget every write not fsynced yet; returns how many files lost data."""


@dataclass(frozen=True)
class FaultContext:
    toxiproxy: Toxiproxy
    processes: ProcessControl
    """The pipeline's processes: the coordinator and the workers."""
    services: ProcessControl
    """The environment's services: `kafka`, `postgres`."""
    disk_control: Path
    """The control file through which the sinks' file writes are faulted."""
    resolve_role: Callable[[str], str] = field(default=lambda role: role)
    """The process that plays a role (`faults.targets.ROLES`) right now."""
    proxies: Callable[[str], list[str]] = field(default=lambda link: [link])
    """The Toxiproxy proxies that make up a link: a Kafka link in a cluster has one per broker."""
    cluster: ClusterControl | None = None
    """The cluster's elections and replica state, when the environment is a cluster."""
    output_dirs: tuple[Path, ...] = ()
    """Where the sink's data files are (the run's `output/` and `lake/`): what a corrupt fault damages."""
    clock_file: Callable[[str], Path | None] = field(default=lambda target: None)
    """The offset file of a process or service started with the clock shim: what a clock fault moves."""
    pipeline: tuple[str, ...] = ()
    """Every process of the pipeline: what a power cut kills."""
    storage: Storage | None = None
    """The sink's output served through lazyfs, when a fault of the run loses unfsynced writes."""


class Injector(Protocol):
    def __call__(self, fault: Any, context: FaultContext) -> Heal: ...
