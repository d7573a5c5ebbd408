"""The contracts every connector implements, in the shape of Flink's two-phase-commit sinks.

A source hands out records with their positions and can snapshot and restore those positions.
A sink writes records, *prepares* them at a checkpoint (pre-commit: durable but invisible for a
two-phase sink), and later *commits* them. Commit must be idempotent: recovery re-commits the last
persisted checkpoint's handles without knowing whether the first attempt landed.

Handles that were prepared but never made it into a persisted checkpoint stay pending in the
worker and ride along with the next checkpoint, as in Flink's TwoPhaseCommitSinkFunction; after a
restart, `recover` commits what the restored checkpoint lists and removes everything else.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Protocol

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

Positions = dict[str, Any]
"""Source positions by split (a Kafka partition, a Parquet file): JSON-serialisable."""

SPLIT_COLUMN = "source_split"
"""Added by a source asked to tag records with their split; the runtime drops it before the sink."""


class CommitHandle(BaseModel):
    """What a sink needs to commit or abort one prepared checkpoint, persisted with the checkpoint."""

    model_config = ConfigDict(frozen=True)

    sink: str
    job_id: str
    checkpoint_id: int
    worker: int
    payload: dict[str, Any] = {}


class CommitError(RuntimeError):
    """A commit cannot complete without losing, duplicating or overwriting data: never swallowed."""


class PoisonOnError:
    """A sink whose staging failed half-way refuses further writes until `recover`: a file may be
    torn or unaccounted for, and a later handle must never claim rows that are not all on disk."""

    def __init__(self) -> None:
        self.failed: BaseException | None = None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        if self.failed is not None:
            raise CommitError(f"sink failed earlier and needs recover(): {self.failed!r}")
        try:
            yield
        except BaseException as e:
            self.failed = e
            raise

    def clear(self) -> None:
        self.failed = None


class CrashHook(Protocol):
    """Named crash points (see drivers/sdk/crashpoints.py): `hit` may end the process at once."""

    def hit(self, point: str) -> None: ...


class SourceDriver(Protocol):
    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        """Take this worker's share of the splits, resuming from `start` when recovering."""

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        """The next records (the workload's columns: id, key, event_time, payload, checksum), possibly none."""

    def snapshot_positions(self) -> Positions:
        """The positions just after the last record returned by `poll`."""

    def ack(self, positions: Positions) -> None:
        """Everything before `positions` is committed downstream: a source may now commit them itself."""

    def exhausted(self) -> bool:
        """A bounded source has handed out everything in its share; a stream never is."""

    def close(self) -> None: ...


class SinkDriver(Protocol):
    def write(self, records: pa.Table) -> None:
        """Write or stage records; for a two-phase sink nothing written here is visible yet."""

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        """Make everything written since the last prepare durable (and, two-phase, still invisible)."""

    def commit(self, handle: CommitHandle) -> None:
        """Make a prepared checkpoint visible. Idempotent: committing twice is a no-op."""

    def abort(self, handle: CommitHandle) -> None:
        """Discard a prepared checkpoint that will never be committed."""

    def recover(self, committed: list[CommitHandle]) -> None:
        """After a restart: commit `committed` (idempotently) and remove anything else this worker staged."""

    def close(self) -> None: ...
