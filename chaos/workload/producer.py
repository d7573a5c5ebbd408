"""Drive the seeded workload into Kafka at a steady rate, recording every produce's outcome.

An outcome is *acked* (the broker confirmed it), *failed* (definitely not written) or
*indeterminate* (timed out, or never answered: it may or may not be in the topic, Jepsen's
`:info`). Ground truth is read back from the topic later; these outcomes only explain it.

The producer is meant to outrun any pipeline it feeds: the records come encoded a batch at a time
(`chaos.workload.encoded`), they are produced in a tight loop that serves delivery reports every
millisecond's worth of records, and one callback takes every report, reading the record's id from
the head of its value, and stores it into an array indexed by that id (a callback object per record
cost about 1 µs more a record, a fifth of the whole).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from chaos.env.kafka_clients import client_config
from chaos.experiment.models import WorkloadSpec
from chaos.workload.encoded import encoded_batches
from drivers.sdk.events import Event
from drivers.sdk.history import History

ACKED, FAILED, INDETERMINATE = "acked", "failed", "indeterminate"
NO_REPORT = "no delivery report before the flush timeout"

_INDETERMINATE_CODES = {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError._FATAL,  # a fatal producer fails what it holds: some of it may have been written already
}

SETTINGS = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 1_000_000,  # room for a second of records between polls, at any rate
    "message.timeout.ms": 30000,
    "socket.timeout.ms": 10000,
    "reconnect.backoff.max.ms": 1000,
    "partitioner": "murmur2_random",
}
UNASSIGNED = -1
"""`produce`'s partition argument for "the partitioner decides" (librdkafka's RD_KAFKA_PARTITION_UA)."""
POLL_EVERY = 1000
"""Records produced between two polls at most; fewer when the rate is low (about a millisecond's worth)."""
PARTITION_BITS = 6
"""An acked record's place is stored as `offset << PARTITION_BITS | partition`: at most 64 partitions,
and with `acks=all` every ack carries its offset."""
ID_AT = len(b'{"id":')
"""Where a record's id begins in its value: `Record.encode` writes it first."""
_UNANSWERED, _FAILED, _INDETERMINATE = -1, -2, -3
"""What a record's place holds when it was not acked: no report yet, or the report's kind of error."""


@dataclass
class WorkloadProgress:
    """Counters the fault schedule and the progress display read while the workload runs."""

    produced: int = 0
    acked: int = 0
    failed: int = 0
    indeterminate: int = 0
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class WorkloadOutcome:
    outcomes: pa.Table  # id, status, partition, offset, error
    seconds: float


class Outcomes:
    """Each record's delivery report, in one array indexed by record id: a report costs one store."""

    def __init__(self, records: int, progress: WorkloadProgress):
        self.place = np.full(records, _UNANSWERED, np.int64)
        self.errors: dict[int, str] = {}
        self.progress = progress

    def delivered(self, err: KafkaError | None, msg: Message) -> None:
        value = msg.value()
        record_id = int(value[ID_AT:value.index(b",", ID_AT)])
        if err is None:
            self.place[record_id] = msg.offset() << PARTITION_BITS | msg.partition()
            self.progress.acked += 1
        elif err.code() in _INDETERMINATE_CODES or err.retriable() or err.fatal():
            self.place[record_id], self.errors[record_id] = _INDETERMINATE, err.str()
            self.progress.indeterminate += 1
        else:
            self.place[record_id], self.errors[record_id] = _FAILED, err.str()
            self.progress.failed += 1

    def table(self, produced: int) -> pa.Table:
        """The outcomes of records 0..produced-1; a record never answered is indeterminate."""
        place = self.place[:produced]
        acked = place >= 0
        status = np.select([acked, place == _FAILED], [0, 1], 2).astype(np.int8)
        messages = {"": 0, NO_REPORT: 1}
        error = np.where(acked, 0, 1).astype(np.int32)
        for record_id, message in self.errors.items():
            if record_id < produced:
                error[record_id] = messages.setdefault(message, len(messages))
        return pa.table({
            "id": pa.array(np.arange(produced, dtype=np.int64)),
            "status": pa.DictionaryArray.from_arrays(status, [ACKED, FAILED, INDETERMINATE]).cast(pa.string()),
            "partition": pa.array(np.where(acked, place & (2**PARTITION_BITS - 1), -1).astype(np.int32)),
            "offset": pa.array(np.where(acked, place >> PARTITION_BITS, -1)),
            "error": pa.DictionaryArray.from_arrays(error, list(messages)).cast(pa.string()),
        })


def run_workload(
    spec: WorkloadSpec,
    seed: int,
    bootstrap: str,
    topic: str,
    history: History,
    progress: WorkloadProgress,
    stop: threading.Event,
    flush_timeout: float = 60.0,
) -> WorkloadOutcome:
    outcomes = Outcomes(spec.records, progress)
    producers = Producers(lambda error_cb: Producer(client_config(bootstrap, **SETTINGS, error_cb=error_cb)), history)
    history.append(Event.WORKLOAD_START, records=spec.records, rate=spec.rate, topic=topic)
    start = time.monotonic()
    produced = _produce(producers, topic, spec, seed, outcomes, stop, start)
    remaining = producers.flush(flush_timeout)
    producers.report(produced)
    seconds = time.monotonic() - start
    progress.done.set()
    table = outcomes.table(produced)
    progress.indeterminate += int(np.count_nonzero(outcomes.place[:produced] == _UNANSWERED))
    history.append(Event.WORKLOAD_END, produced=produced, acked=progress.acked, failed=progress.failed,
                   indeterminate=progress.indeterminate, unflushed=remaining, seconds=round(seconds, 3))
    return WorkloadOutcome(table, seconds)


class Producers:
    """The workload's producer, and the next one when it dies. An idempotent producer that finds its
    acknowledged sequence broken (an unclean leader election lost writes it had been told were
    written) raises a fatal error and refuses every produce after it: as an application would, the
    workload records that (`workload.producer_fatal`) and goes on with a new producer."""

    def __init__(self, new: Callable[[Callable[[KafkaError], None]], Producer], history: History):
        self.new = new
        self.history = history
        self.fatal: KafkaError | None = None
        """The current producer's fatal error, once it has one (its error callback sets it)."""
        self.current = new(self._on_error)

    def _on_error(self, error: KafkaError) -> None:
        """Errors come here rather than out of `poll` and `flush` (from inside a delivery report);
        the transient ones librdkafka recovers from by itself."""
        if error.fatal():
            self.fatal = error

    def replace(self, at: int) -> Producer:
        old = self.current
        self.report(at)
        self.current = self.new(self._on_error)
        self._drain(old, 5)  # its delivery reports: what it held fails with _FATAL, counted indeterminate
        return self.current

    def poll(self, timeout: float) -> None:
        """Serve delivery reports; a fatal error raised out of them is kept, for the caller to act on."""
        try:
            self.current.poll(timeout)
        except (KafkaException, SystemError) as e:
            self.keep_fatal(e)

    def flush(self, timeout: float) -> int:
        """Flush the current producer (a fatal one fails what it holds); the records left unflushed."""
        return self._drain(self.current, timeout)

    def _drain(self, producer: Producer, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return producer.flush(max(0.0, deadline - time.monotonic()))
            except (KafkaException, SystemError) as e:  # raised once, when the fatal error is served: flush on
                self.keep_fatal(e)

    def keep_fatal(self, error: Exception) -> None:
        """Keep a fatal producer error; raise anything else. The binding raises a fatal error out of
        `poll` or `flush`, and when a delivery report runs while it is pending, Python wraps it in a
        SystemError (that report is lost: its record stays unanswered, so indeterminate)."""
        kafka = error if isinstance(error, KafkaException) else error.__cause__
        code = kafka.args[0] if isinstance(kafka, KafkaException) else None
        if code is None or not (code.fatal() or code.code() == KafkaError._FATAL):  # a dead one refuses: _FATAL
            raise error
        self.fatal = self.fatal or code

    def report(self, at: int) -> None:
        """Record the current producer's fatal error, if it had one, as of record `at`."""
        if self.fatal is not None:
            self.history.append(Event.WORKLOAD_PRODUCER_FATAL, error=self.fatal.str(), record=at)
            self.fatal = None


def _produce(producers: Producers, topic: str, spec: WorkloadSpec, seed: int, outcomes: Outcomes,
             stop: threading.Event, start: float) -> int:
    """Produce the records in id order, record `i` not before `start + i / rate`, a slice of about a
    millisecond's worth at a time; how many were produced before `stop`."""
    progress, delivered, producer = outcomes.progress, outcomes.delivered, producers.current
    produce = producer.produce
    step = max(1, min(POLL_EVERY, int(spec.rate / 1000)))
    rows = max(256, int(spec.rate / 20))  # a batch is encoded in well under its 50 ms of records
    for batch in encoded_batches(spec, seed, rows):
        for at in range(0, len(batch.values), step):
            first = batch.first + at
            while (delay := start + first / spec.rate - time.monotonic()) > 0 and not stop.is_set():
                producers.poll(min(delay, 0.05))
            if stop.is_set():
                return first
            keys, values = batch.keys[at:at + step], batch.values[at:at + step]
            for offset, (key, value) in enumerate(zip(keys, values)):
                try:
                    produce(topic, value, key, UNASSIGNED, delivered)
                except BufferError:  # the local queue is full: serve delivery reports until it has room
                    _produce_when_room(producer, topic, key, value, delivered)
                except KafkaException as e:
                    producers.keep_fatal(e)
                    producer = producers.replace(first + offset)
                    produce = producer.produce
                    produce(topic, value, key, UNASSIGNED, delivered)
            progress.produced = first + len(values)
            producers.poll(0)
            if producers.fatal is not None:
                producer = producers.replace(first + len(values))
                produce = producer.produce
    return spec.records


def _produce_when_room(producer: Producer, topic: str, key: bytes, value: bytes,
                       report: Callable[[KafkaError | None, Message], None]) -> None:
    while True:
        producer.poll(0.05)
        try:
            producer.produce(topic, value, key, UNASSIGNED, report)
            return
        except BufferError:
            continue
