"""Deliberately buggy connector variants: the checkers must catch every one of them.

Each mutant is a small, realistic mistake in an otherwise correct driver, selected by
`pipeline.mutant` in an experiment. They exist so that an experiment can prove a checker fails
when the bug it guards against is really there.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import OFFSET_END, KafkaError, TopicPartition
from deltalake import DeltaTable

from drivers.delta.sinks import DeltaTwoPhaseSink
from drivers.hudi.sink import HudiTwoPhaseSink
from drivers.kafka_source import KafkaSource
from drivers.parquet_sinks import TwoPhaseParquetSink
from drivers.sdk.contracts import CommitHandle

CONNECTION_LOSS = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})
"""librdkafka's error codes for a lost broker connection: one broker's socket failed or was
refused (`_TRANSPORT`), or none is reachable any more (`_ALL_BROKERS_DOWN`)."""


def is_connection_loss(error: KafkaError) -> bool:
    """Whether a librdkafka error says the client lost its connection to the brokers, as opposed to
    a failed request (a timeout, a fenced producer) or a fatal error."""
    return error.code() in CONNECTION_LOSS and not error.fatal()


class AutoCommitKafkaSource(KafkaSource):
    """Seeded bug: the consumer commits what it has polled every 200 ms, written or not (librdkafka's
    `enable.auto.commit`): a crash between the poll and the sink's commit skips those records. The
    classic loss bug of a pipeline that leaves offsets to the client."""

    def _consumer_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {**config, "enable.auto.commit": True, "auto.commit.interval.ms": 200}


class ReconnectSkipKafkaSource(KafkaSource):
    """Seeded bug: after a lost broker connection, resumes every assigned partition at its high
    watermark instead of at its position, the "reset to latest after a reconnect" mistake (as a
    client that treats its fetch state as gone and re-subscribes with `auto.offset.reset=latest`
    would). The records produced while the connection was down are never read (nor what librdkafka
    had prefetched); the positions jump over them at the next record read, so the checkpoints look
    healthy and the pipeline drains.

    It learns of the loss from librdkafka's error callback and from the errors `consume` returns.
    The partitions are re-assigned at `OFFSET_END` on the next poll; librdkafka resolves that to
    the end of the log once the broker answers again, which is after the outage.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.disconnected = False
        """A connection loss was seen, and the partitions have not been reset since."""
        self.resets = 0
        """How many times the partitions were reset to their high watermarks."""
        super().__init__(*args, **kwargs)

    def _consumer_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {**config, "error_cb": self._consumer_error}

    def _consumer_error(self, error: KafkaError) -> None:
        if is_connection_loss(error):
            self.disconnected = True

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        if self.disconnected:
            self.disconnected = False
            assigned = self.consumer.assignment()
            if assigned:
                self.consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_END) for tp in assigned])
                self.resets += 1
        return super().poll(max_records, timeout)


class NonIdempotentCommitSink(TwoPhaseParquetSink):
    """Commits by *copying* each pending file to a fresh name, and keeps no manifest, so a recovery
    that re-commits the last checkpoint publishes its rows a second time."""

    def commit(self, handle: CommitHandle) -> None:
        self.crash.hit("sink.commit.before")
        for pending, final in handle.payload.get("files", []):
            src = self.output_dir / pending
            if src.exists():
                shutil.copyfile(src, self.output_dir / f"{final[:-len('.parquet')]}-{uuid.uuid4().hex[:6]}.parquet")
        self.crash.hit("sink.commit.after")


class TruncatingWidenSink(TwoPhaseParquetSink):
    """Keeps writing a widened column under its old, narrower type: values past int32 wrap around
    silently, the way a sink that never reads the new schema would store them."""

    def write(self, records: pa.Table) -> None:
        if "score" in records.column_names and records.schema.field("score").type != pa.int32():
            index = records.schema.get_field_index("score")
            records = records.set_column(index, "score", pc.cast(records["score"], pa.int32(), safe=False))
        super().write(records)


class NonAtomicCommitSink(TwoPhaseParquetSink):
    """Splits each checkpoint into many small files and publishes them one by one, pausing between
    renames, so a reader polling the directory sees part of a commit."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, max_file_rows=50, **kwargs)  # type: ignore[arg-type]

    def commit(self, handle: CommitHandle) -> None:
        for pending, final in handle.payload.get("files", []):
            src = self.output_dir / pending
            if src.exists() and not (self.output_dir / final).exists():
                os.replace(src, self.output_dir / final)
                time.sleep(0.3)
        super().commit(handle)  # finds the files moved, and writes the manifest


class NonAtomicDeltaSink(DeltaTwoPhaseSink):
    """Seeded bug: commits a checkpoint's files in two Delta commits, 0.5 s apart, each with part of
    the rows and the same app transaction, the way a sink that caps the files per commit would. Each
    commit is atomic, but the checkpoint is not: a reader between the two sees part of it. Files of
    at most 50 rows, so a checkpoint has several to split. Used to prove the atomic-visibility
    checker fails on a lakehouse sink."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, max_file_rows=50, **kwargs)

    def _add_files(self, dt: DeltaTable, handle: CommitHandle, adds: list[dict[str, Any]]) -> None:
        half = (len(adds) + 1) // 2
        super()._add_files(dt, handle, adds[:half])
        if adds[half:]:
            time.sleep(0.5)
            super()._add_files(DeltaTable(self.table_uri), handle, adds[half:])


class DropLateSink(TwoPhaseParquetSink):
    """A late-event side output that accepts records and writes none: late events vanish silently."""

    def write(self, records: pa.Table) -> None:
        pass


class LeakyRollbackHudiSink(HudiTwoPhaseSink):
    """Seeded bug: "rolls back" a failed instant by removing its timeline entries only, skipping
    the deletion of its base files. The files of a failed instant older than every instant left on
    the timeline then read as committed (hudi-rs, like Java Hudi, treats them as archived commits):
    rows that were never committed become visible. Used to prove the visibility check can fail."""

    def _delete_data_files(self, instant: str) -> None:
        pass
