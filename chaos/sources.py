"""The harness's side of each source kind: how the workload gets in, and what ground truth is.

Kafka sources are fed live by the producer and judged against the topic read back; a Parquet batch
source gets its input files written before the job starts, and is judged against those files read
back; an in-memory stream generates the workload inside the workers, so the seed's records are the
truth.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka.admin import NewTopic

from chaos.env.environment import Environment
from chaos.history import History
from chaos.lakehouse import read_table, table_format, table_settings, write_table
from chaos.readers import read_topic
from chaos.spec.models import Experiment
from chaos.workload import records
from chaos.workload.producer import WorkloadOutcome, WorkloadProgress, run_workload
from drivers.parquet_files import write_durably

ROW_GROUP = 100


class SourceSide(Protocol):
    def prepare(self) -> None: ...
    def settings(self) -> dict[str, Any]: ...
    def drive(self, progress: WorkloadProgress, stop: threading.Event) -> WorkloadOutcome | None: ...
    def caught_up(self, status: dict[str, Any]) -> bool: ...
    def committed(self, status: dict[str, Any] | None) -> int: ...
    def truth(self) -> pa.Table: ...
    def max_rate(self) -> float | None: ...


class KafkaSide:
    def __init__(self, x: Experiment, env: Environment, run_id: str, history: History):
        self.x, self.env, self.history = x, env, history
        self.topic = f"chaos-{run_id}-input"
        self.group = f"chaos-{run_id}-pipeline"
        self.ends: dict[int, int] = {}

    def prepare(self) -> None:
        admin = self.env.admin()
        topic = NewTopic(self.topic, num_partitions=self.x.workload.partitions, replication_factor=1)
        admin.create_topics([topic], operation_timeout=30)[self.topic].result(timeout=60)

    def settings(self) -> dict[str, Any]:
        # A Kafka sink commits the source offsets inside its transaction: those are where to resume.
        resume_from = "group" if self.x.pipeline.sink == "kafka-transactional" else "checkpoint"
        return {"bootstrap": self.env.bootstrap("worker-kafka"), "topic": self.topic, "group_id": self.group,
                "partitions": self.x.workload.partitions, "mutant": self.x.pipeline.mutant,
                "resume_from": resume_from}

    def drive(self, progress: WorkloadProgress, stop: threading.Event) -> WorkloadOutcome | None:
        outcome = run_workload(self.x.workload, self.x.seed, self.env.bootstrap("workload-kafka"), self.topic,
                               self.history, progress, stop)
        return outcome

    def caught_up(self, status: dict[str, Any]) -> bool:
        if not self.ends:
            from chaos.readers import OffsetProbe

            probe = OffsetProbe(self.env.bootstrap_direct, self.group, self.topic, self.x.workload.partitions)
            try:
                self.ends = probe.ends()
            finally:
                probe.close()
        positions = {int(p): int(o) for worker in status["positions"].values() for p, o in worker.items()}
        return all(positions.get(p, 0) >= end for p, end in self.ends.items() if end > 0)

    def committed(self, status: dict[str, Any] | None) -> int:
        if not status:
            return 0
        return sum(int(o) for worker in status["positions"].values() for o in worker.values())

    def truth(self) -> pa.Table:
        return read_topic(self.env.bootstrap_direct, self.topic)

    def max_rate(self) -> float | None:
        return None  # the producer paces the topic


class ParquetBatchSide:
    def __init__(self, x: Experiment, run_dir: Path):
        self.x = x
        self.run_dir = run_dir
        self.input_dir = run_dir / "input"

    def prepare(self) -> None:
        """The workload as input files, several per worker, each of several row groups."""
        files = max(self.x.pipeline.workers * 2, 1)
        n = 0
        for table in records.versioned_tables(self.x.workload, self.x.seed):  # one schema per file
            per_file = -(-table.num_rows // files)
            for i in range(files):
                part = table.slice(i * per_file, per_file)
                if part.num_rows:
                    write_durably(part, self.input_dir, f"input-{n:04d}.parquet", row_group_size=ROW_GROUP)
                    n += 1

    def settings(self) -> dict[str, Any]:
        return {"input_dir": str(self.input_dir)}

    def drive(self, progress: WorkloadProgress, stop: threading.Event) -> WorkloadOutcome | None:
        progress.produced = progress.acked = self.x.workload.records
        return None

    def caught_up(self, status: dict[str, Any]) -> bool:
        return bool(status.get("exhausted"))

    def committed(self, status: dict[str, Any] | None) -> int:
        return self.x.workload.records if status and status.get("exhausted") else 0

    def truth(self) -> pa.Table:
        files = sorted(self.input_dir.glob("input-*.parquet"))
        return pa.concat_tables([pq.read_table(f, columns=["id", "key", "checksum"]) for f in files])

    def max_rate(self) -> float | None:
        """Files would be read in a blink; the workload's rate spreads them over checkpoints and faults."""
        return self.x.workload.rate / self.x.pipeline.workers


class MemorySide(ParquetBatchSide):
    def prepare(self) -> None:
        pass

    def settings(self) -> dict[str, Any]:
        w = self.x.workload
        return {"records": w.records, "rate": w.rate, "keys": w.keys, "payload_size": w.payload_size,
                "seed": self.x.seed, "started_at": time.time()}

    def truth(self) -> pa.Table:
        return records.expected_table(self.x.workload, self.x.seed).select(["id", "key", "checksum"])

    def max_rate(self) -> float | None:
        return None  # the stream paces itself


class TableBatchSide(ParquetBatchSide):
    """A lakehouse table written before the job with the format's own writer, read back the same way."""

    def __init__(self, x: Experiment, env: Environment, run_dir: Path, kind: str):
        super().__init__(x, run_dir)
        self.kind = kind
        self.env = env

    def prepare(self) -> None:
        size = ROW_GROUP * 5  # a file a commit: small enough that each checkpoint has a few to take
        parts = [table.slice(i, size) for table in records.versioned_tables(self.x.workload, self.x.seed)
                 for i in range(0, table.num_rows, size)]
        write_table(self.kind, self._settings(harness=True), parts)

    def _settings(self, harness: bool = False) -> dict[str, Any]:
        return table_settings(self.kind, "input", self.x, self.env, self.run_dir, harness=harness)

    def settings(self) -> dict[str, Any]:
        return self._settings()

    def truth(self) -> pa.Table:
        return read_table(self.kind, self._settings(harness=True)).select(["id", "key", "checksum"])


def source_side(x: Experiment, env: Environment, run_dir: Path, history: History) -> SourceSide:
    kind = table_format(x.pipeline.source)
    if kind:
        return TableBatchSide(x, env, run_dir, kind)
    if x.pipeline.source in ("kafka", "kafka-transactional"):
        return KafkaSide(x, env, run_dir.name, history)
    if x.pipeline.source == "parquet-batch":
        return ParquetBatchSide(x, run_dir)
    if x.pipeline.source == "memory-stream":
        return MemorySide(x, run_dir)
    raise ValueError(f"no harness support for source {x.pipeline.source!r}")
