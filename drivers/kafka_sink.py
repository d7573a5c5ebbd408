"""The Kafka transactional sink: exactly once from Kafka to Kafka, consume-transform-produce.

Each worker slot has a stable `transactional.id`, so a restarted worker's `init_transactions`
fences its zombie and aborts whatever that zombie left open. At a checkpoint the sink adds the
source's offsets to the open transaction (`send_offsets_to_transaction`) and flushes: the
transaction is prepared. The coordinator's commit then commits output and offsets atomically.
librdkafka cannot resume another process's transaction, so the source position that counts is the
one committed inside the transaction: after a crash, the source resumes at the group's committed
offsets and the aborted transaction's records are read again.

Between prepare and commit the one producer cannot take new records (`awaiting_commit`).
"""

from __future__ import annotations

import json

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from drivers.contracts import CommitHandle, CrashHook, Positions

SINK = "kafka-transactional"
TIMEOUT = 30.0


class KafkaTransactionalSink:
    def __init__(self, bootstrap: str, topic: str, job_id: str, worker: int, crash: CrashHook,
                 source_topic: str, consumer: Consumer | None = None):
        self.topic = topic
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.source_topic = source_topic
        self.consumer = consumer
        self.transactional_id = f"{job_id}-sink-{worker}"
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "transactional.id": self.transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            "transaction.timeout.ms": 60000,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
            "linger.ms": 5,
        })
        self.producer.init_transactions(TIMEOUT)
        self.producer.begin_transaction()
        self.open_since: int | None = None
        self.offsets: Positions = {}

    def attach_offsets(self, positions: Positions) -> None:
        """The source positions that the next prepare adds to the transaction."""
        self.offsets = positions

    def write(self, records: pa.Table) -> None:
        for row in records.to_pylist():
            self._produce(row)

    def _produce(self, row: dict) -> None:
        value = json.dumps(row, separators=(",", ":")).encode()
        while True:
            try:
                self.producer.produce(self.topic, key=str(row["key"]).encode(), value=value)
                return
            except BufferError:
                self.producer.poll(0.1)

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        self.crash.hit("sink.prepare.before")
        if self.offsets and self.consumer is not None:
            offsets = [TopicPartition(self.source_topic, int(p), int(o)) for p, o in self.offsets.items()]
            self.producer.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata(), TIMEOUT)
        remaining = self.producer.flush(TIMEOUT)
        if remaining:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{remaining} records not flushed"))
        self.crash.hit("sink.write.mid")
        if self.open_since is None:
            self.open_since = checkpoint_id
        self.crash.hit("sink.prepare.after")
        return CommitHandle(sink=SINK, job_id=self.job_id, checkpoint_id=checkpoint_id, worker=self.worker,
                            payload={"transactional_id": self.transactional_id})

    @property
    def awaiting_commit(self) -> bool:
        return self.open_since is not None

    def commit(self, handle: CommitHandle) -> None:
        """Commit the open transaction if the handle covers it; any other handle is already settled.

        A retriable error is retried; an abortable one aborts the transaction and raises, so the
        worker fails over and the source replays from the offsets committed before it; a fatal one
        (this producer was fenced) raises as it is: only a new incarnation may go on.
        """
        if self.open_since is None or handle.checkpoint_id < self.open_since:
            return
        self.crash.hit("sink.commit.before")
        for attempt in range(5):
            try:
                self.producer.commit_transaction(TIMEOUT)
                break
            except KafkaException as e:
                error: KafkaError = e.args[0]
                if error.txn_requires_abort():
                    self.producer.abort_transaction(TIMEOUT)
                    self.open_since = None
                    raise
                if not error.retriable() or attempt == 4:
                    raise
        self.open_since = None
        self.crash.hit("sink.commit.after")
        self.producer.begin_transaction()

    def abort(self, handle: CommitHandle) -> None:
        self.producer.abort_transaction(TIMEOUT)
        self.open_since = None
        self.producer.begin_transaction()

    def recover(self, committed: list[CommitHandle]) -> None:
        """Nothing to finish: init_transactions has already aborted what a crashed incarnation left
        open, and committed transactions are committed. The source replays from the group's offsets."""

    def close(self) -> None:
        """Abort whatever is open: an open transaction would hold back read_committed readers."""
        try:
            self.producer.abort_transaction(5)
        except KafkaException:
            pass
