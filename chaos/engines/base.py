"""What an engine is to the runner: the processes that run the pipeline, how each is started and
known to be ready, and how far the pipeline has committed.

`native` is our runtime (a coordinator and workers, `drivers.runtime`); `kafka-connect` is a real
engine run as a black box. The runner supervises an engine's processes, aims faults at them and
their links, and waits on `status` to drain; it knows nothing else of the engine.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Protocol

from chaos.env.processes import ManagedProcess

Factory = Callable[[int], ManagedProcess]
"""Starts incarnation N of a process."""

Status = dict[str, Any]
"""The last commit the engine is known to have made: `checkpoint_id`, and `positions` as
{worker: {partition: offset}} for a partitioned source; `settled` False while work the positions
count is still on its way to a commit (a black box's hand-over); `halted`, why the pipeline has
stopped for good (no restart will come), once it has."""


class Engine(Protocol):
    processes: list[str]
    """The processes that run the pipeline, in start order: the targets of process faults."""
    ready_events: dict[str, str]
    """The history event by which each process says it is ready (it carries the process's pid)."""

    def prepare(self) -> dict[str, Any]:
        """Write the pipeline's configuration and create what it needs; returns that configuration,
        recorded in resolved.json."""

    def factory(self, name: str) -> Factory:
        """How to start the named process."""

    def on_ready(self, name: str, event: dict[str, Any]) -> None:
        """Called when a process says it is ready (a coordinator's chosen port, say)."""

    def start(self, pid: Callable[[str], int | None], stack: ExitStack) -> None:
        """The processes are started: begin whatever the engine does beside them, stopped by `stack`.
        `pid(name)` is the current incarnation's pid."""

    def status(self) -> Status | None:
        """The last commit, or None before the first one."""

    def resolve_role(self, role: str) -> str:
        """The process that plays `role` (`faults.targets.ROLES`) now; raises when none does."""
