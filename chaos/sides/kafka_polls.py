"""A concurrent consumer of a Kafka output topic, read as a queue all run long.

A final read shows what the topic ends up holding; it cannot show what consumers were handed on the
way. Jepsen's queue workload checks that too: a read_committed consumer that jumps over offsets,
goes backwards, or is handed a record twice in one session, and a reader that sees a transaction's
records before the pipeline decided to commit them. `TopicPoller` is one consumer thread that reads
the output topic from its beginning while the run goes on and keeps every record it is handed, as
(session, ts, partition, offset, id). A session is one consumer instance: one that fails is closed
and a new one reads from the beginning again, so each session's sequence can be judged on its own
(`chaos.checkers.polls`).
"""

from __future__ import annotations

import json
import logging
import time

import pyarrow as pa
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from chaos.env.kafka_clients import client_config
from chaos.sides.background import BackgroundReader

log = logging.getLogger(__name__)

POLL_SCHEMA = pa.schema([("session", pa.int32()), ("ts", pa.float64()), ("partition", pa.int32()),
                         ("offset", pa.int64()), ("id", pa.int64())])
"""One row per record handed to the consumer, in the order it was handed."""
BATCH = 500
POLL_SECONDS = 0.05
"""A short poll: the time a record is seen at is the time the consumer could first see it, near enough
to judge it against the commit decision (`premature-read`, tolerance 0.1 s)."""


class TopicPoller(BackgroundReader):
    """Reads `topic` read_committed on a daemon thread from `start` until `stop`."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__("topic-poller")
        self.bootstrap = bootstrap
        self.topic = topic
        self.columns: dict[str, list[float | int]] = {name: [] for name in POLL_SCHEMA.names}
        self.sessions = 0
        self.errors = 0
        self.last_error = ""

    def table(self) -> pa.Table:
        return pa.table(self.columns, schema=POLL_SCHEMA)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except KafkaException as e:  # this consumer is done for: the next session starts afresh
                self.errors += 1
                self.last_error = str(e)
                log.info("topic poller session %d of %s ended: %s", self.sessions, self.topic, e)
                self._stop.wait(0.5)

    def _session(self) -> None:
        self.sessions += 1
        session = self.sessions
        consumer = Consumer(client_config(self.bootstrap, **{
            "group.id": f"chaos-poller-{time.time_ns()}", "enable.auto.commit": False,
            "isolation.level": "read_committed", "enable.partition.eof": False,
        }))
        try:
            partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(partitions)])
            while not self._stop.is_set():
                messages = consumer.consume(num_messages=BATCH, timeout=POLL_SECONDS)
                seen = time.time()
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                            raise KafkaException(error)
                        continue
                    self._keep(session, seen, message.partition(), message.offset(), message.value())
        finally:
            consumer.close()

    def _keep(self, session: int, seen: float, partition: int, offset: int, value: bytes) -> None:
        columns = self.columns
        columns["session"].append(session)
        columns["ts"].append(seen)
        columns["partition"].append(partition)
        columns["offset"].append(offset)
        columns["id"].append(int(json.loads(value)["id"]))
