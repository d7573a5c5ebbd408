"""The Kafka transactional sink: exactly once from Kafka to Kafka, consume-transform-produce.

Each worker slot has a stable `transactional.id`, so a restarted worker's `init_transactions`
fences its zombie and aborts whatever that zombie left open. At a checkpoint the sink adds the
source's offsets to the open transaction (`send_offsets_to_transaction`) and flushes: the
transaction is prepared. The coordinator's commit then commits output and offsets atomically.
librdkafka cannot resume another process's transaction, so the source position that counts is the
one committed inside the transaction: after a crash, the source resumes at the group's committed
offsets and the aborted transaction's records are read again.

Between prepare and commit the one producer cannot take new records (`awaiting_commit`).

librdkafka's `send_offsets_to_transaction` can block far past its timeout while the group
coordinator is unreachable (librdkafka #5456 and #5511; the certification suite's source-reconnect
scenario found it: the link down for 3 s wedged the worker for good). So that call runs under a
watchdog, and a producer that stays wedged ends its process: the supervisor restarts the worker,
whose `init_transactions` fences the wedged transaction, and the source replays from the offsets
committed inside the last transaction.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any, Callable, TypeVar

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from drivers.kafka_source import is_connection_loss
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CommitHandle, CrashHook, Positions
from drivers.sdk.events import Event
from drivers.sdk.history import History

SINK = "kafka-transactional"
TIMEOUT = 30.0
OFFSETS_TIMEOUT = 10.0
"""Kept short: a wedged send_offsets_to_transaction (below) is only noticed once it has passed."""
WEDGED_EXIT = 75
"""The exit code of a worker whose producer is wedged: a temporary failure, so it is restarted."""

T = TypeVar("T")


def transactional_id(job_id: str, worker: int) -> str:
    """A worker slot's stable transactional id: its restarts fence their predecessors with it."""
    return f"{job_id}-sink-{worker}"


def within(seconds: float, what: str, call: Callable[[], T], on_wedged: Callable[[str], None] | None = None) -> T:
    """`call()`, or the end of this process if it has not returned after `seconds` (`on_wedged` is
    told why first, while the process can still say so)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    thread = threading.Thread(target=run, name=what, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        why = f"{what} still blocked after {seconds:.0f}s (librdkafka #5456): failing over"
        if on_wedged is not None:
            on_wedged(why)
        print(why, file=sys.stderr, flush=True)
        os._exit(WEDGED_EXIT)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("result")  # type: ignore[return-value]


class KafkaTransactionalSink:
    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "KafkaTransactionalSink":
        """Consume-transform-produce: the worker's Kafka source's consumer and topic ride along, so
        that its offsets commit inside this sink's transaction."""
        return cls(settings["bootstrap"], settings["topic"], ctx.job_id, ctx.worker, ctx.crash,
                   source_topic=getattr(ctx.source, "topic", ""), consumer=getattr(ctx.source, "consumer", None),
                   history=ctx.history)

    def __init__(self, bootstrap: str, topic: str, job_id: str, worker: int, crash: CrashHook,
                 source_topic: str, consumer: Consumer | None = None, history: History | None = None):
        self.topic = topic
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.source_topic = source_topic
        self.consumer = consumer
        self.transactional_id = self.incarnation_id()
        self.history = history
        """Where the sink says its writes failed (`sink.write_failed`): the evidence that a fault on
        its link reached it."""
        self.connection_lost = False
        self.producer = Producer(self.producer_config(bootstrap))
        self.producer.init_transactions(TIMEOUT)
        self.producer.begin_transaction()
        self.open_since: int | None = None
        self.offsets: Positions = {}

    def incarnation_id(self) -> str:
        """The transactional id this incarnation takes: the slot's, so that it fences the last one."""
        return transactional_id(self.job_id, self.worker)

    def producer_config(self, bootstrap: str) -> dict[str, Any]:
        return {
            "error_cb": self._producer_error,
            "bootstrap.servers": bootstrap,
            "transactional.id": self.transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            "transaction.timeout.ms": 60000,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
            "linger.ms": 5,
        }

    def _producer_error(self, error: KafkaError) -> None:
        """librdkafka retries a lost connection by itself (the producer is idempotent); say so once
        per loss, and again once it writes after it."""
        if is_connection_loss(error) and not self.connection_lost:
            self.connection_lost = True
            if self.history is not None:
                self.history.append(Event.SINK_WRITE_FAILED, topic=self.topic, error=error.str())

    def _wedged(self, why: str) -> None:
        """The transaction cannot complete while the broker is out of reach: that is this sink's write
        failing, even when the wedged call kept librdkafka's error callbacks from being served."""
        if self.history is not None:
            self.history.append(Event.SINK_WRITE_FAILED, topic=self.topic, error=why)

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
            metadata = self.consumer.consumer_group_metadata()
            within(OFFSETS_TIMEOUT + 5, "send_offsets_to_transaction",
                   lambda: self.producer.send_offsets_to_transaction(offsets, metadata, OFFSETS_TIMEOUT),
                   on_wedged=self._wedged)
        remaining = self.producer.flush(TIMEOUT)
        if remaining:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{remaining} records not flushed"))
        self.connection_lost = False  # written through since
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
                    if self.history is not None:
                        self.history.append(Event.SINK_ROLLBACK, checkpoint_id=handle.checkpoint_id, error=error.str())
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
