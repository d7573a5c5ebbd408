"""Deliberately buggy connector variants: the checkers must catch every one of them.

Each mutant is a small, realistic mistake in an otherwise correct driver, selected by
`pipeline.mutant` in an experiment. They exist so that an experiment can prove a checker fails
when the bug it guards against is really there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from confluent_kafka import OFFSET_END, KafkaError, TopicPartition
from deltalake import DeltaTable, write_deltalake
from deltalake.transaction import CommitProperties, Transaction

from drivers.delta.sinks import DeltaTwoPhaseSink
from drivers.hudi.sink import HudiTwoPhaseSink
from drivers.iceberg.sinks import IcebergTwoPhaseSink
from drivers.kafka_sink import TIMEOUT, KafkaTransactionalSink
from drivers.kafka_source import KafkaSource, is_connection_loss
from drivers.parquet_sinks import TwoPhaseParquetSink
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CommitHandle
from drivers.sdk.seeded_bug import SeededBug


class AutoCommitKafkaSource(SeededBug, KafkaSource):
    """Seeded bug: the consumer commits what it has polled every 50 ms, written or not (librdkafka's
    `enable.auto.commit`): a crash between the poll and the sink's commit skips those records. The
    classic loss bug of a pipeline that leaves offsets to the client."""

    def _consumer_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {**config, "enable.auto.commit": True, "auto.commit.interval.ms": 50}

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        rows = super().poll(max_records, timeout)
        if rows.num_rows:
            self.bites("records polled: the client commits their offsets before the sink has them")
        return rows


class ReconnectSkipKafkaSource(SeededBug, KafkaSource):
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

    def _consumer_error(self, error: KafkaError) -> None:
        super()._consumer_error(error)
        if is_connection_loss(error):
            self.disconnected = True

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        if self.disconnected:
            self.disconnected = False
            assigned = self.consumer.assignment()
            if assigned:
                self.consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_END) for tp in assigned])
                self.resets += 1
                self.bites("after a lost connection, every partition resumed at its high watermark")
        return super().poll(max_records, timeout)


class NonIdempotentCommitSink(SeededBug, TwoPhaseParquetSink):
    """Commits by *copying* each pending file to a fresh name, and keeps no manifest, so a recovery
    that re-commits the last checkpoint publishes its rows a second time."""

    def commit(self, handle: CommitHandle) -> None:
        self.crash.hit("sink.commit.before")
        for pending, final in handle.payload.get("files", []):
            src = self.output_dir / pending
            if src.exists():
                shutil.copyfile(src, self.output_dir / f"{final[:-len('.parquet')]}-{uuid.uuid4().hex[:6]}.parquet")
                self.bites("a commit copied a staged file to a fresh name instead of renaming it")
        self.crash.hit("sink.commit.after")


class TruncatingWidenSink(SeededBug, TwoPhaseParquetSink):
    """Keeps writing a widened column under its old, narrower type: values past int32 wrap around
    silently, the way a sink that never reads the new schema would store them."""

    def write(self, records: pa.Table) -> None:
        if "score" in records.column_names and records.schema.field("score").type != pa.int32():
            index = records.schema.get_field_index("score")
            records = records.set_column(index, "score", pc.cast(records["score"], pa.int32(), safe=False))
            self.bites("a widened column was written under its old, narrower type")
        super().write(records)


class NonAtomicCommitSink(SeededBug, TwoPhaseParquetSink):
    """Splits each checkpoint into many small files and publishes them one by one, pausing between
    renames, so a reader polling the directory sees part of a commit."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, max_file_rows=50, **kwargs)  # type: ignore[arg-type]

    def commit(self, handle: CommitHandle) -> None:
        files = handle.payload.get("files", [])
        for pending, final in files:
            src = self.output_dir / pending
            if src.exists() and not (self.output_dir / final).exists():
                os.replace(src, self.output_dir / final)
                if len(files) > 1:
                    self.bites("a commit published its files one by one")
                time.sleep(0.3)
        super().commit(handle)  # finds the files moved, and writes the manifest


class ExposePreparedSink(SeededBug, TwoPhaseParquetSink):
    """Seeded bug: publishes a checkpoint's files at prepare, under their final names, instead of at
    commit; a rollback on recovery deletes the ones no manifest records. When the coordinator dies
    between prepare and persist, readers saw records that the rollback then took back, and the
    replay rebuilds the same records later: the final output is right, every final-state checker
    passes, and only what the reader saw during the run shows the bug."""

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        handle = super().prepare(checkpoint_id)
        for pending, final in handle.payload.get("files", []):
            os.replace(self.output_dir / pending, self.output_dir / final)
            self.bites("prepared files published before the commit")
        return handle  # commit finds them in place, and writes the manifest

    def recover(self, committed: list[CommitHandle]) -> None:
        kept = {name for manifest in (self.output_dir / "_manifests" / self.job_id).glob(f"c*-w{self.worker}.json")
                for name in json.loads(manifest.read_text())["files"]}
        kept |= {final for handle in committed for _, final in handle.payload.get("files", [])}
        for path in self.output_dir.glob(f"part-{self.job_id}-w{self.worker}-c*.parquet"):
            if path.name not in kept:
                path.unlink()  # the rollback of what was published too early
        super().recover(committed)


class OrphanSweepSink(SeededBug, TwoPhaseParquetSink):
    """Seeded bug: a recovery whose orphan sweep matches too much. Cleaning up after a crash, it
    takes every file of its own worker for a leftover, committed part files included, and deletes
    them; the manifests stay, so the restored checkpoint counts as committed and nothing is written
    again. Readers saw those records, for as long as they had been committed, and then they are
    gone for good."""

    def _orphan_pattern(self) -> re.Pattern[str]:
        tag = rf"{re.escape(self.job_id)}-w{self.worker}-"
        return re.compile(rf"{super()._orphan_pattern().pattern}|part-{tag}c\d+-\d+\.parquet")

    def recover(self, committed: list[CommitHandle]) -> None:
        published = set(self.output_dir.glob(f"part-{self.job_id}-w{self.worker}-c*.parquet")) \
            if self.output_dir.is_dir() else set()
        super().recover(committed)
        if swept := [path for path in published if not path.exists()]:
            self.bites(f"the orphan sweep deleted {len(swept)} committed files")


class SkipFsyncSink(SeededBug, TwoPhaseParquetSink):
    """Seeded bug: closes each in-progress file without fsyncing it, the one fsync a careful sink
    makes before the rename that prepares it. A process crash loses nothing (the kernel's page cache
    still holds the data, and every later read sees it), so every experiment passes, except one where
    the machine loses power after a commit: the committed files come back empty, their names
    renamed into place with no data behind them."""

    def _roll(self) -> None:
        assert self._open is not None
        path, file, writer, _ = self._open
        writer.close()
        file.close()  # no fsync: the data is only in the page cache
        self._open = None
        self._staged.append(path)
        self.bites("an in-progress file closed without fsync")


class LingeringRollbackSink(SeededBug, TwoPhaseParquetSink):
    """Seeded bug: a rollback that is not atomic. On recovery it moves each prepared file it must
    discard back among the published ones (the way a rollback that "restores" a file before deleting
    it would), and deletes them only a moment later. A reader in that moment sees records that no
    commit holds, and then sees them vanish; the replay writes them again, so the final output is
    right and every final-state checker passes. The moment lasts `LINGER` seconds: long enough for
    the reader, polling every 0.2 s, to see it every time."""

    LINGER = 1.0

    def recover(self, committed: list[CommitHandle]) -> None:
        keep = {pending for handle in committed for pending, _ in handle.payload.get("files", [])}
        prefix = f".pending-{self.job_id}-w{self.worker}-c"
        discarded = sorted(p for p in self.output_dir.glob(f"{prefix}*.parquet") if p.name not in keep) \
            if self.output_dir.is_dir() else []
        if discarded:
            shown = [p.with_name(f"part-{self.job_id}-w{self.worker}-rollback-{n}.parquet")
                     for n, p in enumerate(discarded)]
            for pending, visible in zip(discarded, shown):
                os.replace(pending, visible)
            self.bites(f"the rollback showed {len(shown)} discarded files for {self.LINGER}s")
            time.sleep(self.LINGER)
            for path in shown:
                path.unlink(missing_ok=True)
        super().recover(committed)


class NonAtomicDeltaSink(SeededBug, DeltaTwoPhaseSink):
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
            self.bites("a checkpoint was committed in two Delta commits")
            time.sleep(0.5)
            super()._add_files(DeltaTable(self.table_uri), handle, adds[half:])


class DropLateSink(SeededBug, TwoPhaseParquetSink):
    """A late-event side output that accepts records and writes none: late events vanish silently."""

    def write(self, records: pa.Table) -> None:
        if records.num_rows:
            self.bites("late records were dropped")


class LeakyRollbackHudiSink(HudiTwoPhaseSink):
    """Seeded bug: "rolls back" a failed instant by removing its timeline entries only, skipping
    the deletion of its base files. The files of a failed instant older than every instant left on
    the timeline then read as committed (hudi-rs, like Java Hudi, treats them as archived commits):
    rows that were never committed become visible. Used to prove the visibility check can fail."""

    def _delete_data_files(self, instant: str) -> None:
        pass


# -- seeded bugs of the incidents (experiments/incidents/): each incident passes without its bug ------
class NoAncestryCheckIcebergSink(SeededBug, IcebergTwoPhaseSink):
    """Seeded bug (apache/iceberg#2808): commits a checkpoint without looking for it in the snapshot
    ancestry first, and without pyiceberg's duplicate-file guard. A commit that landed but whose
    response was lost (or whose worker crashed right after) is committed again on recovery, and its
    files are read twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.check_duplicate_files = False

    def _is_committed(self, table: Any, handle: CommitHandle) -> bool:
        if super()._is_committed(table, handle):
            self.bites(f"checkpoint {handle.checkpoint_id} committed again, though the ancestry has it")
        return False


class NoTxnCheckDeltaSink(SeededBug, DeltaTwoPhaseSink):
    """Seeded bug (delta-io/delta-rs#2580): commits a checkpoint by appending its staged rows with
    `write_deltalake` and its app transaction, without reading that transaction's version from the
    log first. delta-rs does not deduplicate by itself, so recovery after a commit whose
    acknowledgement was lost appends the same rows again."""

    def _commit_once(self, handle: CommitHandle, state: dict[str, bool]) -> None:
        if not state["announced"]:
            state["announced"] = True
            self.crash.hit("sink.commit.before")
        if (self.transaction_version() or -1) >= handle.checkpoint_id:
            self.bites(f"checkpoint {handle.checkpoint_id} appended again, though the log has its transaction")
        staged = [pq.read_table(self.table_dir / add["path"]) for add in handle.payload["adds"]]
        properties = CommitProperties(app_transactions=[Transaction(app_id=self.app_id, version=handle.checkpoint_id)],
                                      custom_metadata={"chaos.job_id": self.job_id, "chaos.worker": self.worker,
                                                       "chaos.checkpoint_id": handle.checkpoint_id})
        write_deltalake(self.table_uri, pa.concat_tables(staged, promote_options="permissive"), mode="append",
                        schema_mode="merge", commit_properties=properties)
        self.crash.hit("sink.commit.after")


class RollbackOnRecoverHudiSink(SeededBug, HudiTwoPhaseSink):
    """Seeded bug (apache/hudi#18051): after a failure between the checkpoint and the Hudi commit,
    recovery rolls back every pending instant, the restored checkpoint's included, instead of
    committing it. The checkpoint's source positions have moved on, so its rows are lost."""

    def recover(self, committed: list[CommitHandle]) -> None:
        if any(h.payload.get("instant") for h in committed):
            self.bites("recovery rolled back the restored checkpoint's instants instead of committing them")
        super().recover([])


class ResendOnRecoverKafkaSink(SeededBug, KafkaTransactionalSink):
    """Seeded bug: a transactional Kafka sink that, after a failover, produces the restored
    checkpoint's records again in a new transaction, as if finishing a commit were re-sending it.
    The old transaction was either committed (its records are there already) or aborted (and the
    source replays them from its committed offsets), so every recovery with records duplicates them.
    It keeps each prepared checkpoint's records in a spool file to re-send them."""

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "ResendOnRecoverKafkaSink":
        sink = super().create(settings, ctx)
        assert isinstance(sink, ResendOnRecoverKafkaSink)
        sink.spool = ctx.run_dir / "kafka-sink-spool"
        return sink

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spool: Path | None = None
        self._rows: list[dict] = []

    def write(self, records: pa.Table) -> None:
        self._rows += records.to_pylist()
        super().write(records)

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        handle = super().prepare(checkpoint_id)
        if self.spool is not None:
            self.spool.mkdir(parents=True, exist_ok=True)
            path = self.spool / f"w{self.worker}-c{checkpoint_id}.json"
            path.write_text(json.dumps(self._rows))
            self._rows = []
            handle = handle.model_copy(update={"payload": {**handle.payload, "spool": str(path)}})
        return handle

    def recover(self, committed: list[CommitHandle]) -> None:
        resent = [row for h in committed if h.payload.get("spool") and Path(h.payload["spool"]).exists()
                  for row in json.loads(Path(h.payload["spool"]).read_text())]
        if resent:
            self.bites(f"recovery re-sent {len(resent)} records of the restored checkpoint")
            for row in resent:
                self._produce(row)
            self.producer.commit_transaction(30)
            self.producer.begin_transaction()


class EarlyCommitKafkaSink(SeededBug, KafkaTransactionalSink):
    """Seeded bug: commits its transaction as it prepares, before the coordinator has persisted the
    checkpoint: a one-phase commit in two-phase clothing. Every read_committed reader sees the
    checkpoint's records (and the source offsets ride along, committed) before the commit was decided;
    had the coordinator failed between the two, nothing could take them back. The final output is
    right whenever no such failure happens, so only a reader during the run sees it: premature-read."""

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        handle = super().prepare(checkpoint_id)
        self.producer.commit_transaction(TIMEOUT)
        self.open_since = None
        self.producer.begin_transaction()
        self.bites(f"committed checkpoint {checkpoint_id}'s transaction in prepare, before its decision")
        return handle


class FreshIdKafkaSink(SeededBug, KafkaTransactionalSink):
    """Seeded bug: each incarnation takes a transactional id of its own (the slot's plus its pid),
    the mistake of deriving the id from something a restart changes. No one then fences a crashed
    incarnation: its open transaction stays open until it times out (15 min here, the broker's
    maximum), the last stable offset of every partition it wrote stops there, and every
    read_committed reader hangs behind it: Kafka's hanging transaction (KIP-664)."""

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "FreshIdKafkaSink":
        sink = super().create(settings, ctx)
        assert isinstance(sink, FreshIdKafkaSink)
        sink.incarnations = ctx.run_dir / "kafka-sink-incarnations"
        return sink

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.incarnations: Path | None = None

    def incarnation_id(self) -> str:
        return f"{super().incarnation_id()}-{os.getpid()}"

    def producer_config(self, bootstrap: str) -> dict[str, Any]:
        return {**super().producer_config(bootstrap), "transaction.timeout.ms": 900_000}

    def recover(self, committed: list[CommitHandle]) -> None:
        """Where a correct incarnation has already fenced its predecessor, by taking its id."""
        if self.incarnations is not None:
            self.incarnations.mkdir(parents=True, exist_ok=True)
            earlier = sorted(p.name for p in self.incarnations.glob(f"w{self.worker}-*"))
            if earlier:
                self.bites(f"{self.transactional_id} fenced none of {len(earlier)} earlier incarnations")
            (self.incarnations / f"w{self.worker}-{self.transactional_id}").touch()
        super().recover(committed)
