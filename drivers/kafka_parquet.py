"""Kafka to Parquet, at least once: the pipeline process of the walking skeleton.

The order of a flush is the whole guarantee: the batch's Parquet file is written and fsynced
first, and only then are the consumer offsets committed. A crash between the two re-delivers the
batch (duplicates, which at-least-once allows); nothing is ever committed that is not on disk.

Run as `python -m drivers.kafka_parquet CONFIG.json`; SIGTERM flushes and exits cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from chaos.history import History
from chaos.workload import records
from drivers.parquet_files import write_durably

OUTPUT_SCHEMA = records.SCHEMA.append(pa.field("kafka_partition", pa.int32())).append(
    pa.field("kafka_offset", pa.int64()))

_RETRIABLE_COMMIT = {
    KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NETWORK_EXCEPTION,
    KafkaError._WAIT_COORD, KafkaError.REBALANCE_IN_PROGRESS,
}


@dataclass(frozen=True)
class PipelineConfig:
    bootstrap: str
    topic: str
    group_id: str
    output_dir: str
    history_path: str
    checkpoint_interval: float
    max_batch: int = 5000
    mutant: str | None = None


def _retriable(exc: BaseException) -> bool:
    if not isinstance(exc, KafkaException):
        return False
    err = exc.args[0]
    return isinstance(err, KafkaError) and (err.retriable() or err.code() in _RETRIABLE_COMMIT)


class KafkaToParquet:
    def __init__(self, config: PipelineConfig):
        self.config = config
        self.output = Path(config.output_dir)
        self.history = History(Path(config.history_path), source=f"pipeline[{os.getpid()}]")
        self.stopping = False
        self.rows: list[dict[str, Any]] = []
        self.next_offsets: dict[int, int] = {}
        self.last_flush = time.monotonic()
        self.consumer = self._connect()

    @retry(wait=wait_exponential(multiplier=0.2, max=2), stop=stop_after_delay(120), reraise=True)
    def _connect(self) -> Consumer:
        """A subscribed consumer; retried until the broker answers through the link."""
        auto_commit = self.config.mutant == "auto-commit"
        consumer = Consumer({
            "bootstrap.servers": self.config.bootstrap,
            "group.id": self.config.group_id,
            # Static membership: a restarted worker takes its slot back without waiting out the
            # session timeout of the incarnation that crashed.
            "group.instance.id": "pipeline-0",
            # The auto-commit mutant commits what it has polled, written or not: the classic loss bug.
            "enable.auto.commit": auto_commit,
            "auto.commit.interval.ms": 200,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
        })
        try:
            consumer.list_topics(self.config.topic, timeout=5)
        except KafkaException:
            consumer.close()
            raise
        consumer.subscribe([self.config.topic], on_revoke=self._on_revoke)
        return consumer

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Flush before partitions move, so their new owner starts after our committed batch."""
        self.flush()

    def run(self) -> None:
        self.history.append("pipeline.start", group=self.config.group_id)
        while not self.stopping:
            for msg in self.consumer.consume(num_messages=500, timeout=0.2):
                if msg.error():
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    continue
                self._add(msg.value(), msg.partition(), msg.offset())
            due = time.monotonic() - self.last_flush >= self.config.checkpoint_interval
            if self.rows and (due or len(self.rows) >= self.config.max_batch):
                self.flush()
        self.flush()
        self.consumer.close()
        self.history.append("pipeline.stop")

    def _add(self, value: bytes, partition: int, offset: int) -> None:
        record = json.loads(value)
        record["kafka_partition"] = partition
        record["kafka_offset"] = offset
        self.rows.append(record)
        self.next_offsets[partition] = offset + 1

    def flush(self) -> None:
        """Write the batch durably, then commit its offsets: never the other way round."""
        self.last_flush = time.monotonic()
        if not self.rows:
            return
        table = pa.Table.from_pylist(self.rows, schema=OUTPUT_SCHEMA)
        name = f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
        write_durably(table, self.output, name)
        offsets = [TopicPartition(self.config.topic, p, o) for p, o in sorted(self.next_offsets.items())]
        committed = self.config.mutant == "auto-commit" or self._commit(offsets)
        self.history.append("pipeline.commit", file=name, records=table.num_rows, committed=committed,
                            offsets={tp.partition: tp.offset for tp in offsets})
        self.rows = []
        self.next_offsets = {}

    def _commit(self, offsets: list[TopicPartition]) -> bool:
        """Commit synchronously, retrying through faults; a lost generation means redelivery."""
        try:
            self._commit_with_retry(offsets)
            return True
        except KafkaException as e:
            self.history.append("pipeline.commit_failed", error=str(e))
            return False

    @retry(retry=retry_if_exception(_retriable), wait=wait_exponential(multiplier=0.2, max=2),
           stop=stop_after_delay(90), reraise=True)
    def _commit_with_retry(self, offsets: list[TopicPartition]) -> None:
        self.consumer.commit(offsets=offsets, asynchronous=False)


def main(argv: list[str]) -> int:
    config = PipelineConfig(**json.loads(Path(argv[1]).read_text()))
    pipeline = KafkaToParquet(config)

    def stop(signum: int, frame: object) -> None:
        pipeline.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pipeline.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
