"""The connector SDK: everything a connector author builds against, and nothing of the harness.

A source hands out records with positions it can snapshot and restore; a sink writes them,
prepares them at a checkpoint and commits them later, idempotently (`SourceDriver`, `SinkDriver`,
`CommitHandle`). A kind is registered as one `Connector` with its `Capabilities`, from which its
guarantee and its certification scenarios follow. Crash points and disk faults reach a driver
through hooks it calls at the right moments. Records follow the workload's schema and its versions
(`records`), and a runtime process writes what it does to the run's history (`History`, `Event`).

Nothing here imports the experiment spec, the harness (`chaos`) or the fault injectors (`faults`):
the SDK is the ground floor, and a plug-in that imports only it runs in any worker.
"""

from drivers.sdk import records
from drivers.sdk.capabilities import SCHEMA_CHANGES, Capabilities, Maturity
from drivers.sdk.connector import Connector, DriverFactory, Mutant, Settings, WorkerContext, load
from drivers.sdk.contracts import (
    SPLIT_COLUMN,
    CommitError,
    CommitHandle,
    CrashHook,
    PoisonOnError,
    Positions,
    SinkDriver,
    SourceDriver,
)
from drivers.sdk.crashpoints import CRASH_EXIT_CODE, POINTS, CrashPoints, NoCrashes
from drivers.sdk.diskfaults import DiskFaults, check_disk
from drivers.sdk.events import Event
from drivers.sdk.history import History, HistoryTail, read_history
from drivers.sdk.schema_watch import SchemaWatch
from drivers.sdk.seeded_bug import SeededBug

API_VERSION = "1.0"
"""The SDK's version: a plug-in states the one it was built for, and a major change breaks it."""

__all__ = [
    "API_VERSION",
    "CRASH_EXIT_CODE",
    "Capabilities",
    "CommitError",
    "CommitHandle",
    "Connector",
    "CrashHook",
    "CrashPoints",
    "DiskFaults",
    "DriverFactory",
    "Event",
    "History",
    "HistoryTail",
    "Maturity",
    "Mutant",
    "NoCrashes",
    "POINTS",
    "PoisonOnError",
    "Positions",
    "SCHEMA_CHANGES",
    "SPLIT_COLUMN",
    "SchemaWatch",
    "SeededBug",
    "Settings",
    "SinkDriver",
    "SourceDriver",
    "WorkerContext",
    "check_disk",
    "load",
    "read_history",
    "records",
]
