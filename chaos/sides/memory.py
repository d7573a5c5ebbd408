"""The harness's side of the in-memory stream and sink.

The stream generates the seeded workload inside the workers, so the seed's records are the truth:
each worker's share (`id % workers`) is one split, read in id order, which gives every record its
`partition` (the worker) and `offset` (its place in the share) for the late-events checker.

The stream cannot rewind: a restarted worker resumes with the record due now, past its checkpoint's
position. The records in between (handed out after the checkpoint to the incarnation that died, or
due while none was reading) never reach the restored pipeline, nor its split's watermark; the truth
marks them `skipped`, from where the worker says its source resumed (`worker.restored`).

The sink keeps its rows in memory and writes them to a Parquet file per worker at a graceful stop,
which pyarrow reads back like any Parquet output.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import pyarrow as pa

from chaos.sides.parquet import ParquetBatchSourceSide, ParquetSinkSide
from drivers.sdk import records
from drivers.sdk.connector import Settings
from drivers.sdk.events import Event
from drivers.sdk.history import read_history

BASE = ("id", "key", "event_time", "payload", "checksum")


def skipped_ranges(history: Iterable[dict[str, Any]]) -> list[tuple[int, int, int]]:
    """(worker, first, end) for each restart: the share's records from the restored checkpoint's
    position up to where the source resumed, which the restored pipeline never got."""
    gaps = []
    for event in history:
        if event.get("event") != Event.WORKER_RESTORED:
            continue
        restored, resumed = event.get("positions") or {}, event.get("resumed") or {}
        first, end = int(restored.get("next", 0)), int(resumed.get("next", 0))
        if end > first:
            gaps.append((int(event["worker"]), first, end))
    return gaps


def stream_truth(expected: pa.Table, workers: int, gaps: Iterable[tuple[int, int, int]] = ()) -> pa.Table:
    """The workload as the stream's splits hold it: the columns a Kafka topic's truth has (`partition`
    and `offset` included, and the columns of a schema change where there is one), and `skipped`."""
    ids = expected["id"].to_pylist()
    skipped = {(worker, offset) for worker, first, end in gaps for offset in range(first, end)}
    evolving = [c for c in records.EVOLVING if c in expected.column_names]
    table = expected.select([*BASE, *evolving])
    table = table.add_column(len(BASE), "partition", pa.array([i % workers for i in ids], pa.int32()))
    table = table.add_column(len(BASE) + 1, "offset", pa.array([i // workers for i in ids], pa.int64()))
    return table.append_column("skipped", pa.array([(i % workers, i // workers) in skipped for i in ids], pa.bool_()))


class MemorySourceSide(ParquetBatchSourceSide):
    rows_per_unit = 1  # positions: {"next": records handed out}
    partitioned = True  # its truth has each record's split (`partition`) and place in it (`offset`)

    def prepare(self) -> None:
        pass

    def settings(self) -> Settings:
        workload = self.context.experiment.workload
        return {"records": workload.records, "rate": workload.rate, "keys": workload.keys,
                "payload_size": workload.payload_size, "seed": self.context.experiment.seed,
                "schema_change_at": workload.schema_change_at, "late_every": workload.late_every,
                "lateness": workload.lateness, "started_at": time.time()}

    def truth(self) -> pa.Table:
        experiment = self.context.experiment
        expected = records.expected_table(experiment.workload, experiment.seed)
        gaps = skipped_ranges(read_history(self.context.history.path))
        return stream_truth(expected, experiment.pipeline.workers, gaps)

    def max_rate(self) -> float | None:
        return None  # the stream paces itself


class MemorySinkSide(ParquetSinkSide):
    """The sink's dumps are Parquet files in the output directory."""
