"""Builds a worker's source and sink from the job configuration, through the connector table.

The table (`drivers.connectors`) names each kind's factory; a seeded-bug variant chosen by the
experiment (`mutant`) replaces the factory of the kind it belongs to.
"""

from __future__ import annotations

from pathlib import Path

from drivers.connectors import SINKS, SOURCES
from drivers.runtime.config import JobConfig
from drivers.sdk.connector import WorkerContext, load
from drivers.sdk.contracts import CrashHook, SinkDriver, SourceDriver
from drivers.sdk.diskfaults import DiskFaults
from drivers.sdk.events import Event
from drivers.sdk.history import History

DISK_CONTROL = "disk-faults.json"
"""The file in the run directory through which the harness injects disk faults into sink writes."""


def _disk_faults(config: JobConfig, history: History | None) -> DiskFaults:
    """The disk-fault hook; each operation a fault strikes goes on the history (`disk.fault_hit`)."""
    def hit(worker: str, op: str, mode: str) -> None:
        if history is not None:
            history.append(Event.DISK_FAULT_HIT, process=worker, op=op, mode=mode)

    return DiskFaults(Path(config.run_dir) / DISK_CONTROL, on_hit=hit)


def _context(config: JobConfig, worker: int, crash: CrashHook, history: History | None,
             source: SourceDriver | None = None) -> WorkerContext:
    return WorkerContext(job_id=config.job_id, worker=worker, workers=config.workers, run_dir=Path(config.run_dir),
                         crash=crash, disk=_disk_faults(config, history),
                         with_split=config.allowed_lateness is not None, source=source, history=history,
                         mutant=config.mutant)


def create_source(config: JobConfig, worker: int, crash: CrashHook, history: History | None = None) -> SourceDriver:
    factory = SOURCES[config.source].factory(config.mutant)
    return factory.create(config.source_settings, _context(config, worker, crash, history))


def create_sink(config: JobConfig, worker: int, crash: CrashHook, source: SourceDriver,
                history: History | None = None) -> SinkDriver:
    factory = SINKS[config.sink].factory(config.mutant)
    return factory.create(config.sink_settings, _context(config, worker, crash, history, source))


def create_late_sink(config: JobConfig, worker: int, crash: CrashHook, source: SourceDriver,
                     history: History | None = None) -> SinkDriver:
    """The late-event side output is a Parquet directory whatever the main sink is (a dead-letter
    output that any reader can open): two-phase when the main sink is, so that a checkpoint's late
    records commit with its on-time ones, and plain otherwise."""
    kind = SINKS[config.sink]
    variant = kind.mutant(config.mutant) if config.mutant else None
    if variant is not None and variant.late_output:
        factory = load(variant.driver)
    else:
        factory = SINKS["parquet-2pc" if kind.capabilities.two_phase else "parquet"].factory()
    return factory.create({"output_dir": config.sink_settings["late_output_dir"]},
                          _context(config, worker, crash, history, source))
