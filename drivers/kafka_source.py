"""The Kafka source: this worker's share of a topic's partitions, with positions it can snapshot.

Partitions are assigned by the runtime (partition p goes to worker p mod N), not by the consumer
group protocol, so positions restored from a checkpoint are exactly where reading resumes. After
the sink's commit the worker acks, and the offsets are committed to the group.

At least once, those group offsets *are* the source's position: a restart resumes there, so a
batch written but not yet acked is read again (a duplicate, never a loss). Transactional mode
resumes at the checkpoint's positions, which advance atomically with the sink's commit, and reads
with read_committed, so aborted input never leaks through.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import SPLIT_COLUMN, CrashHook, Positions
from drivers.sdk.events import Event
from drivers.sdk.history import History
from drivers.sdk.records import SCHEMA, SCHEMA_V1, SCHEMA_V2, schema_for

CONNECTION_LOSS = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})
"""librdkafka's error codes for a lost broker connection: one broker's socket failed or was
refused (`_TRANSPORT`), or none is reachable any more (`_ALL_BROKERS_DOWN`)."""


PARTITION, OFFSET = "__partition", "__offset"
"""Where each record consumed but not yet handed out came from, beside its fields."""
FIELDS = pa.unify_schemas([SCHEMA_V1, SCHEMA_V2], promote_options="permissive").append(
    pa.field("schema_version", pa.int64()))
"""Every field a record's JSON may carry; each batch is cast to its own version's schema when handed out."""
HELD = FIELDS.append(pa.field(PARTITION, pa.int32())).append(pa.field(OFFSET, pa.int64()))


def decode(values: list[bytes], partitions: list[int], offsets: list[int]) -> pa.Table:
    """A batch of JSON values, parsed at once by pyarrow (about 3x the speed of `json.loads` a record
    and `Table.from_pylist`, the source's largest cost); fields not in FIELDS are ignored, missing
    ones are null, as `from_pylist` under a version's schema left them."""
    if not values:
        return HELD.empty_table()
    data = b"\n".join(values)
    rows = pj.read_json(pa.BufferReader(data),
                        read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
                        parse_options=pj.ParseOptions(explicit_schema=FIELDS, unexpected_field_behavior="ignore",
                                                      newlines_in_values=True))
    return rows.append_column(PARTITION, pa.array(partitions, pa.int32())).append_column(
        OFFSET, pa.array(offsets, pa.int64()))


def is_connection_loss(error: KafkaError) -> bool:
    """Whether a librdkafka error says the client lost its connection to the brokers, as opposed to
    a failed request (a timeout, a fenced producer) or a fatal error."""
    return error.code() in CONNECTION_LOSS and not error.fatal()


def _retriable(exc: BaseException) -> bool:
    return isinstance(exc, KafkaException) and isinstance(exc.args[0], KafkaError) and exc.args[0].retriable()


class KafkaSource:
    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "KafkaSource":
        return cls(settings["bootstrap"], settings["topic"], settings["group_id"], int(settings["partitions"]),
                   ctx.crash, transactional=bool(settings.get("transactional")),
                   resume_from=settings.get("resume_from", "checkpoint"), with_split=ctx.with_split,
                   history=ctx.history)

    def __init__(self, bootstrap: str, topic: str, group_id: str, partitions: int, crash: CrashHook,
                 transactional: bool = False, resume_from: str = "checkpoint", with_split: bool = False,
                 history: History | None = None):
        self.topic = topic
        self.partitions = partitions
        self.resume_from = resume_from if transactional else "group"
        self.with_split = with_split  # tag each record with its partition, for per-split watermarks
        self.crash = crash
        self.history = history
        """Where the source says that it lost the broker and found it again (`source.disconnected`,
        `source.reconnected`): the evidence that a link fault reached it."""
        self.connection_lost = False
        self.consumer = Consumer(self._consumer_config({
            "error_cb": self._consumer_error,
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if transactional else "read_uncommitted",
            "socket.timeout.ms": 10000,
            "session.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
        }))
        self.next: dict[int, int] = {}
        self.held = HELD.empty_table()  # consumed, not yet handed out (another schema version)

    def _consumer_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The librdkafka settings as given: the hook through which a seeded-bug variant
        (`drivers/mutants.py`) changes the client without copying this constructor."""
        return config

    def _consumer_error(self, error: KafkaError) -> None:
        """A non-fatal error from the client or `consume` (a lost connection, a timed-out request):
        librdkafka reconnects and retries by itself, and the fetch resumes at the position, so there
        is nothing to do but say so, once per loss."""
        if is_connection_loss(error) and not self.connection_lost:
            self.connection_lost = True
            if self.history is not None:
                self.history.append(Event.SOURCE_DISCONNECTED, topic=self.topic, error=error.str())

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        """Resume at the checkpoint's positions, or at the group's committed offsets: at least once
        (they are committed after each ack) and when a Kafka sink commits them in its transaction."""
        mine = [p for p in range(self.partitions) if p % workers == worker]
        if start is not None and self.resume_from == "checkpoint":
            offsets = {int(p): int(o) for p, o in start.items()}
        else:
            committed = self._committed([TopicPartition(self.topic, p) for p in mine])
            offsets = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
        self.next = {p: offsets[p] for p in mine if p in offsets}
        self.held = HELD.empty_table()
        self.consumer.assign([TopicPartition(self.topic, p, offsets.get(p, OFFSET_BEGINNING)) for p in mine])

    @retry(retry=retry_if_exception(_retriable), wait=wait_exponential(multiplier=0.2, max=2),
           stop=stop_after_delay(120), reraise=True)
    def _committed(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return self.consumer.committed(partitions, timeout=10)

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        """The next records, all of one schema version: a batch stops where the version changes, so
        a sink sees the schema evolve between writes, as it would behind a schema registry."""
        if not self.held.num_rows:
            records = []
            for msg in self.consumer.consume(num_messages=max_records, timeout=timeout):
                error = msg.error()
                if error is None:
                    records.append(msg)
                elif error.fatal():
                    raise KafkaException(error)
                else:
                    self._consumer_error(error)
            self.held = decode([m.value() for m in records], [m.partition() for m in records],
                               [m.offset() for m in records])
            if self.held.num_rows and self.connection_lost:
                self.connection_lost = False
                if self.history is not None:
                    self.history.append(Event.SOURCE_RECONNECTED, topic=self.topic)
        if not self.held.num_rows:
            return SCHEMA.empty_table()
        versions = self.held["schema_version"]
        version = versions[0].as_py()
        same = pc.is_null(versions) if version is None else pc.fill_null(pc.equal(versions, version), False)
        n = pc.index(same, False).as_py()
        n = self.held.num_rows if n < 0 else n
        batch, self.held = self.held.slice(0, n), self.held.slice(n)
        self.next.update(zip(batch[PARTITION].to_pylist(), (o + 1 for o in batch[OFFSET].to_pylist())))
        self.crash.hit("source.poll.after")
        schema = schema_for(version)
        table = pa.Table.from_arrays([batch[f.name].cast(f.type) for f in schema], schema=schema)
        if self.with_split:
            table = table.append_column(SPLIT_COLUMN, batch[PARTITION].cast(pa.string()))
        return table

    def snapshot_positions(self) -> Positions:
        return {str(p): o for p, o in sorted(self.next.items())}

    def ack(self, positions: Positions) -> None:
        self.crash.hit("source.ack.before")
        if positions:
            self._commit([TopicPartition(self.topic, int(p), int(o)) for p, o in positions.items()])

    @retry(retry=retry_if_exception(_retriable), wait=wait_exponential(multiplier=0.2, max=2),
           stop=stop_after_delay(120), reraise=True)
    def _commit(self, offsets: list[TopicPartition]) -> None:
        self.consumer.commit(offsets=offsets, asynchronous=False)

    def exhausted(self) -> bool:
        return False

    def close(self) -> None:
        self.consumer.close()
