"""One connector kind as one object: what the runtime builds, what it can do, how the harness reads it.

A kind names its worker side and its harness side by import path ("module:attribute"), imported
only where used: a worker loads its own connector and nothing else, and the harness's side never
runs in a worker. The harness side reads the output with the format's own client, never with the
driver's code, so that the checks stay independent of what they check.

Seeded-bug variants (`Mutant`) travel with their kind, so that `chaos certify --mutants` can prove
every checker able to fail, for plug-ins as for the connectors shipped here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from drivers.sdk.capabilities import Capabilities, Maturity
from drivers.sdk.contracts import CrashHook, SinkDriver, SourceDriver
from drivers.sdk.diskfaults import DiskFaults
from drivers.sdk.history import History

Role = Literal["source", "sink"]
Settings = dict[str, Any]
"""A driver's settings, JSON-serialisable: written by its harness side into the job configuration."""


@dataclass(frozen=True)
class WorkerContext:
    """What the runtime hands a driver's factory besides its settings."""

    job_id: str
    worker: int
    workers: int
    run_dir: Path
    crash: CrashHook
    disk: DiskFaults | None = None
    """The disk-fault hook for a sink's file writes (None: no faults)."""
    with_split: bool = False
    """A source tags each record with its split (`SPLIT_COLUMN`), for per-split watermarks."""
    source: SourceDriver | None = None
    """The worker's source, for a sink that commits the source's positions itself (Kafka to Kafka)."""
    history: History | None = None
    """The run's history, for a driver that reports what it did (a seeded bug, when it bites)."""
    mutant: str | None = None
    """The seeded-bug variant the experiment chose, if any."""


class DriverFactory(Protocol):
    """What a kind's `driver` path names: usually the driver class, whose classmethod `create` it is."""

    def create(self, settings: Settings, ctx: WorkerContext) -> SourceDriver | SinkDriver: ...


@dataclass(frozen=True)
class Mutant:
    """A deliberately buggy variant of a kind's driver, and the proof that the suite catches it."""

    name: str
    bug: str
    """The mistake, in a few words."""
    driver: str
    """The variant's factory, as an import path."""
    scenario: str
    """The certification scenario whose fault it needs (its slug)."""
    experiment: str
    """The experiment that runs it: a path relative to the repository, or absolute."""
    caught_by: str
    """The invariant whose verdict must fail."""
    late_output: bool = False
    """It replaces the late-event side output rather than the driver itself."""
    repeats: int = 1
    """How many runs with the bug (each with its own seed) must all be killed: more than one for a
    bug whose window depends on timing, to show that it is caught every time, not by luck."""

    @property
    def path(self) -> Path:
        return Path(self.experiment)


@dataclass(frozen=True)
class Connector:
    """A connector kind: one entry of the connector table (`drivers.connectors`)."""

    name: str
    role: Role
    title: str
    capabilities: Capabilities
    maturity: Maturity
    driver: str
    """Its factory (worker side), as an import path: e.g. `drivers.parquet_sinks:ParquetSink`."""
    harness: str
    """Its harness side (setup, ground truth, the official reader), as an import path."""
    mutants: tuple[Mutant, ...] = field(default=())
    crash_points: tuple[str, ...] = ()
    """The crash points (`drivers.sdk.crashpoints.POINTS`) its driver passes: an experiment can arm
    only these (and the coordinator's), since a point never passed would never fire."""
    links: tuple[str, ...] = ()
    """The testbed's network links this kind's processes use, so that faults can target them:
    `workload-kafka` (the producer feeding a source), `worker-kafka`, and `worker-catalog` (a
    catalog database, there when the profile puts it off the node)."""

    def factory(self, mutant: str | None = None) -> DriverFactory:
        """The driver's factory, or a mutant's that replaces the driver."""
        for variant in self.mutants:
            if variant.name == mutant and not variant.late_output:
                return load(variant.driver)
        return load(self.driver)

    def mutant(self, name: str) -> Mutant | None:
        return next((m for m in self.mutants if m.name == name), None)


def load(path: str) -> Any:
    """The object an import path names: `package.module:Attribute` (dotted attributes allowed)."""
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"{path!r} is not an import path of the form 'module:attribute'")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target
