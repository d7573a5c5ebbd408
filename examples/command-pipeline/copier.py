"""A pipeline of your own, put under test with `engine: command`: Kafka to Parquet files.

It stands for whatever a user runs (a Flink job, a script, a service). It knows nothing of the
testbed: it is told where Kafka, the topic, its consumer group and its output directory are, and
prints `copier ready` once it has joined. Each batch it polls is written to a Parquet file (to a
hidden name, fsynced, then renamed) and only then are the batch's offsets committed: at least once.

`--buffer-seconds S` makes it the buggy pipeline the testbed should catch: it commits each batch's
offsets at once but writes the output only every S seconds, so a kill loses what it had buffered.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaError

BATCH = 500
COLUMNS = ("id", "key", "event_time", "payload", "checksum")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--buffer-seconds", type=float, default=0.0)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "session.timeout.ms": 6000})
    consumer.subscribe([args.topic], on_assign=lambda *_: print("copier ready", flush=True))
    buffered: list[dict] = []
    flushed_at = time.monotonic()
    while not stopping:
        messages = [m for m in consumer.consume(BATCH, timeout=0.5)
                    if m.error() is None or m.error().code() != KafkaError._PARTITION_EOF]
        errors = [m.error() for m in messages if m.error() is not None]
        if errors:
            raise SystemExit(f"copier: {errors[0]}")
        rows = [{column: json.loads(m.value())[column] for column in COLUMNS} for m in messages]
        if args.buffer_seconds:  # the bug: offsets committed for rows that are only in memory
            buffered += rows
            if messages:
                consumer.commit(asynchronous=False)
            if buffered and time.monotonic() - flushed_at >= args.buffer_seconds:
                write(args.output, buffered)
                buffered, flushed_at = [], time.monotonic()
        elif rows:
            write(args.output, rows)
            consumer.commit(asynchronous=False)
    consumer.close()


def write(directory: Path, rows: list[dict]) -> None:
    """One file, visible whole or not at all: written under a hidden name, fsynced, then renamed."""
    name = f"part-{uuid.uuid4().hex}.parquet"
    hidden = directory / f".{name}"
    pq.write_table(pa.Table.from_pylist(rows), hidden)
    with open(hidden, "rb+") as written:
        os.fsync(written.fileno())
    hidden.rename(directory / name)


if __name__ == "__main__":
    main()
