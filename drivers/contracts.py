"""The contracts every connector implements, in the shape of Flink's two-phase-commit sinks.

A source hands out records with their positions and can snapshot and restore those positions.
A sink buffers writes, *prepares* them at a checkpoint (pre-commit: durable but invisible),
and later *commits* them; commit must be idempotent, because recovery re-commits the last
persisted checkpoint's handles without knowing whether the first attempt landed.
"""

from __future__ import annotations

from typing import Any, Protocol

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

Positions = dict[str, Any]
"""Source positions by split (a Kafka partition, a Parquet file): JSON-serialisable."""


class CommitHandle(BaseModel):
    """What a sink needs to commit or abort one prepared checkpoint, persisted with the checkpoint."""

    model_config = ConfigDict(frozen=True)

    sink: str
    job_id: str
    checkpoint_id: int
    worker: int
    payload: dict[str, Any] = {}


class SourceDriver(Protocol):
    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        """Take this worker's share of the splits, resuming from `start` when recovering."""

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        """The next records (the workload's columns), possibly none."""

    def snapshot_positions(self) -> Positions:
        """The positions just after the last record returned by `poll`."""

    def ack(self, positions: Positions) -> None:
        """The sink holds everything before `positions` durably: a source may now commit them."""

    def close(self) -> None: ...


class SinkDriver(Protocol):
    def open(self, job_id: str, worker: int) -> None: ...

    def write(self, records: pa.Table) -> None:
        """Buffer or stage records; nothing written here is visible to readers yet for two-phase sinks."""

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        """Make everything written since the last checkpoint durable but invisible (pre-commit)."""

    def commit(self, handle: CommitHandle) -> None:
        """Make a prepared checkpoint visible. Idempotent: committing twice is a no-op."""

    def abort(self, handle: CommitHandle) -> None:
        """Discard a prepared checkpoint that was never persisted by the coordinator."""

    def recover(self, committed: list[CommitHandle]) -> None:
        """After a restart: finish `committed`, and clean up anything else this job staged."""

    def close(self) -> None: ...
