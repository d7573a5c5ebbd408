"""The harness's side of the Kafka source and the transactional Kafka sink.

The source's topic is fed live by the workload's producer (through the `workload-kafka` link) and
judged against the topic read back; the sink's output topic is read back too. Both reads go over
the broker's direct listener (no proxy, no faults) with a read_committed consumer, up to the high
watermark of every partition.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from chaos.env.kafka_clients import client_config
from chaos.errors import EnvironmentFailure
from chaos.sides.base import OutputWatch, RunContext
from chaos.sides.stable_offsets import stable_offsets
from chaos.workload.producer import WorkloadOutcome, WorkloadProgress, run_workload
from drivers.connectors import SINKS, SOURCES
from drivers.sdk.connector import Settings
from drivers.sdk.records import EVOLVING

TRUTH_SCHEMA = pa.schema([
    ("id", pa.int64()), ("key", pa.string()), ("event_time", pa.int64()), ("payload", pa.string()),
    ("checksum", pa.int64()),
    ("partition", pa.int32()), ("offset", pa.int64()),
])


def read_topic(bootstrap: str, topic: str, timeout: float = 120.0) -> pa.Table:
    """Everything the topic holds that a read_committed reader can reach: up to each partition's last
    stable offset (what an open transaction holds back past it is no one's to read yet)."""
    consumer = Consumer(client_config(bootstrap, **{
        "group.id": f"chaos-truth-{time.time_ns()}", "enable.auto.commit": False,
        "isolation.level": "read_committed", "enable.partition.eof": True,
    }))
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = sorted(metadata.partitions)
        ends = {p: lso for p, (lso, _) in stable_offsets(AdminClient(client_config(bootstrap)), topic).items()}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions if ends[p] > 0])
        pending = {p for p in partitions if ends[p] > 0}
        rows: dict[str, list[object]] = {name: [] for name in TRUTH_SCHEMA.names}
        evolving: dict[str, dict[int, object]] = {}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise EnvironmentFailure(f"reading topic {topic} back did not finish within {timeout:.0f}s")
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                p = msg.partition()
                if msg.error():
                    if msg.offset() >= ends.get(p, 0):
                        pending.discard(p)
                    continue
                if msg.offset() >= ends[p] - 1:
                    pending.discard(p)
                record = json.loads(msg.value())
                for name in ("id", "key", "event_time", "payload", "checksum"):
                    rows[name].append(record[name])
                rows["partition"].append(p)
                rows["offset"].append(msg.offset())
                for name in EVOLVING:
                    if name in record:
                        evolving.setdefault(name, {})[len(rows["id"]) - 1] = record[name]
        table = pa.table(rows, schema=TRUTH_SCHEMA)
        for name, values in sorted(evolving.items()):  # columns of a schema change, where records carry them
            table = table.append_column(name, pa.array([values.get(i) for i in range(table.num_rows)]))
        return table
    finally:
        consumer.close()


class OffsetProbe:
    """Reads a group's committed offsets and a topic's end offsets, over one long-lived client.

    It never joins the group: `committed()` only asks the group coordinator.
    """

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int):
        self._consumer = Consumer(client_config(bootstrap, **{"group.id": group, "enable.auto.commit": False}))
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]

    def committed(self) -> dict[int, int]:
        """The group's committed offset per partition (-1 where it has none yet)."""
        return {tp.partition: tp.offset for tp in self._consumer.committed(self._partitions, timeout=10)}

    def ends(self) -> dict[int, int]:
        return {tp.partition: self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._partitions}

    def close(self) -> None:
        self._consumer.close()


def input_topic(run_id: str) -> str:
    return f"chaos-{run_id}-input"


def output_topic(run_id: str) -> str:
    return f"chaos-{run_id}-output"


def read_committed_topics(context: RunContext) -> list[str]:
    """The topics this run's readers read committed: a transactional Kafka source's input (the
    pipeline's consumers) and the Kafka sink's output (the checkers' reader)."""
    pipeline = context.experiment.pipeline
    return ([input_topic(context.run_id)] if pipeline.source == "kafka-transactional" else []) + \
        ([output_topic(context.run_id)] if pipeline.sink == "kafka-transactional" else [])


def create_topic(context: RunContext, topic: str) -> None:
    admin = context.env.admin()
    min_insync = context.experiment.environment.kafka.min_insync_replicas
    new = NewTopic(topic, num_partitions=context.experiment.workload.partitions,
                   replication_factor=context.env.replication_factor,
                   config={} if min_insync is None else {"min.insync.replicas": str(min_insync)})
    admin.create_topics([new], operation_timeout=30)[topic].result(timeout=60)


class KafkaSourceSide:
    live_feed = True
    partitioned = True

    def __init__(self, context: RunContext):
        self.context = context
        self.topic = input_topic(context.run_id)
        self.group = f"chaos-{context.run_id}-pipeline"
        self.ends: dict[int, int] = {}

    def prepare(self) -> None:
        create_topic(self.context, self.topic)

    def settings(self) -> Settings:
        pipeline = self.context.experiment.pipeline
        # A sink that commits the source's offsets inside its own transaction: those are where to resume.
        resume_from = "group" if SINKS[pipeline.sink].capabilities.transactional else "checkpoint"
        return {"bootstrap": self.context.env.bootstrap("worker-kafka"), "topic": self.topic, "group_id": self.group,
                "partitions": self.context.experiment.workload.partitions, "resume_from": resume_from,
                "transactional": SOURCES[pipeline.source].capabilities.transactional}

    def drive(self, progress: WorkloadProgress, stop: threading.Event) -> WorkloadOutcome | None:
        experiment = self.context.experiment
        return run_workload(experiment.workload, experiment.seed, self.context.env.bootstrap("workload-kafka"),
                            self.topic, self.context.history, progress, stop)

    def caught_up(self, status: dict[str, Any]) -> bool:
        if not self.ends:
            probe = OffsetProbe(self.context.env.bootstrap_direct, self.group, self.topic,
                                self.context.experiment.workload.partitions)
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
        return read_topic(self.context.env.bootstrap_direct, self.topic)

    def max_rate(self) -> float | None:
        return None  # the producer paces the topic


class KafkaSinkSide:
    """The output topic, created before the job and read back read_committed after it. It is not
    watched for atomic visibility: read_committed is not atomic across partitions for a reader, and
    the prefix checker covers exactly once here. It is polled: a concurrent consumer reads it as a
    queue all run long."""

    watched = False
    polled = True

    def __init__(self, context: RunContext):
        self.context = context
        self.topic = output_topic(context.run_id)

    def settings(self) -> Settings:
        create_topic(self.context, self.topic)
        return {"bootstrap": self.context.env.bootstrap("sink-kafka"), "topic": self.topic}

    def read(self) -> pa.Table:
        return read_topic(self.context.env.bootstrap_direct, self.topic)

    def watch(self) -> OutputWatch | None:
        return None
