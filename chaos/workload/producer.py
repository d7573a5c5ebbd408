"""Drive the seeded workload into Kafka at a steady rate, recording every produce's outcome.

An outcome is *acked* (the broker confirmed it), *failed* (definitely not written) or
*indeterminate* (timed out, or never answered: it may or may not be in the topic, Jepsen's
`:info`). Ground truth is read back from the topic later; these outcomes only explain it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa
from confluent_kafka import KafkaError, Message, Producer

from drivers.sdk.history import History
from chaos.env.kafka_clients import client_config
from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import generate
from drivers.sdk.events import Event

ACKED, FAILED, INDETERMINATE = "acked", "failed", "indeterminate"

_INDETERMINATE_CODES = {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError.NETWORK_EXCEPTION,
}


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
    status: dict[int, tuple[str, int, int, str]] = {}

    def on_delivery(record_id: int, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            status[record_id] = (ACKED, msg.partition(), msg.offset(), "")
            progress.acked += 1
        elif err.code() in _INDETERMINATE_CODES or err.retriable():
            status[record_id] = (INDETERMINATE, -1, -1, err.str())
            progress.indeterminate += 1
        else:
            status[record_id] = (FAILED, -1, -1, err.str())
            progress.failed += 1

    producer = Producer(client_config(bootstrap, **{
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "socket.timeout.ms": 10000,
        "reconnect.backoff.max.ms": 1000,
        "partitioner": "murmur2_random",
    }))
    history.append(Event.WORKLOAD_START, records=spec.records, rate=spec.rate, topic=topic)
    start = time.monotonic()
    ids: list[int] = []
    for record in generate(spec, seed):
        if stop.is_set():
            break
        due = start + record.id / spec.rate
        while (delay := due - time.monotonic()) > 0:
            producer.poll(min(delay, 0.05))
        while True:
            try:
                producer.produce(topic, key=record.key.encode(), value=record.encode(),
                                 on_delivery=lambda err, msg, rid=record.id: on_delivery(rid, err, msg))
                break
            except BufferError:
                producer.poll(0.1)
        ids.append(record.id)
        progress.produced += 1
        producer.poll(0)
    remaining = producer.flush(flush_timeout)
    seconds = time.monotonic() - start
    progress.done.set()
    rows = [status.get(i, (INDETERMINATE, -1, -1, "no delivery report before the flush timeout")) for i in ids]
    progress.indeterminate += sum(1 for i in ids if i not in status)
    table = pa.table({
        "id": pa.array(ids, pa.int64()),
        "status": pa.array([r[0] for r in rows], pa.string()),
        "partition": pa.array([r[1] for r in rows], pa.int32()),
        "offset": pa.array([r[2] for r in rows], pa.int64()),
        "error": pa.array([r[3] for r in rows], pa.string()),
    })
    history.append(Event.WORKLOAD_END, produced=len(ids), acked=progress.acked, failed=progress.failed,
                   indeterminate=progress.indeterminate, unflushed=remaining, seconds=round(seconds, 3))
    return WorkloadOutcome(table, seconds)
