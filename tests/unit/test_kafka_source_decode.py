"""The Kafka source's columnar decoding: `poll` hands out exactly what the record-by-record version
did (`json.loads` each value, `Table.from_pylist` under the batch's schema version), batch for
batch, with the same positions, against a stand-in consumer."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from confluent_kafka import KafkaError

from drivers import kafka_source
from drivers.kafka_source import KafkaSource
from drivers.sdk.contracts import SPLIT_COLUMN
from drivers.sdk.crashpoints import NoCrashes
from drivers.sdk.records import SCHEMA, Workload, generate, schema_for
from tests.unit.test_reconnect_skip import FakeConsumer, Message


class RecordByRecord:
    """The source's poll as it was: one `json.loads` a value, one `from_pylist` a batch."""

    def __init__(self, with_split: bool):
        self.with_split = with_split
        self.held: list[tuple[int, int, dict]] = []
        self.next: dict[int, int] = {}

    def poll(self, consumed: list[Message]) -> pa.Table:
        if not self.held:
            self.held = [(m.partition(), m.offset(), json.loads(m.value())) for m in consumed if m.error() is None]
        if not self.held:
            return SCHEMA.empty_table()
        version = self.held[0][2].get("schema_version")
        n = next((i for i, (_, _, r) in enumerate(self.held) if r.get("schema_version") != version), len(self.held))
        batch, self.held = self.held[:n], self.held[n:]
        for partition, offset, row in batch:
            self.next[partition] = offset + 1
            row.pop("schema_version", None)
        table = pa.Table.from_pylist([row for _, _, row in batch], schema=schema_for(version))
        if self.with_split:
            table = table.append_column(SPLIT_COLUMN, pa.array([str(p) for p, _, _ in batch], pa.string()))
        return table


def batches(values: list[bytes], size: int) -> list[list[Message]]:
    """The values spread over three partitions, served `size` at a time, with an error among them."""
    messages = [Message(i % 3, 10 + i // 3, v) for i, v in enumerate(values)]
    served = [messages[i:i + size] for i in range(0, len(messages), size)]
    served[0].insert(1, Message(error_=KafkaError(KafkaError._TRANSPORT, "Connection refused")))
    return [*served[:2], [], *served[2:]]  # and a poll that finds nothing


def values_of(workload: Workload) -> list[bytes]:
    return [r.encode() for r in generate(workload, 3)]


ODD = [b'{"id":1,"key":"k1","event_time":5,"payload":"ab","checksum":7,"extra":[1,{"x":2}]}',
       b'{"key":"k2","id":2}',  # fields in another order, some missing
       b'{"id":3,"key":"k\\n3\\u00e9","event_time":-5,\n "payload":"","checksum":0}']  # escapes; a newline


@pytest.mark.parametrize("with_split", [False, True])
@pytest.mark.parametrize("values", [
    values_of(Workload(records=500, rate=100.0)),
    values_of(Workload(records=500, rate=100.0, schema_change_at=123)),
    ODD,
], ids=["plain", "schema-change", "odd-values"])
def test_poll_hands_out_what_it_did_record_by_record(monkeypatch, values, with_split):
    monkeypatch.setattr(kafka_source, "Consumer", FakeConsumer)
    source = KafkaSource("127.0.0.1:9", "input", "group", 3, NoCrashes(), transactional=True, with_split=with_split)
    source.open(0, 1, {"0": 10, "1": 10, "2": 10})
    served = batches(values, 97)
    source.consumer.batches = [list(b) for b in served]
    reference = RecordByRecord(with_split)
    handed = 0
    for _ in range(len(served) + 4):  # a schema change splits a consumed batch in two polls
        consumed = served.pop(0) if not reference.held and served else []
        expected = reference.poll(consumed)
        got = source.poll(500, 0.05)
        assert got.schema == expected.schema
        assert got.to_pylist() == expected.to_pylist()
        assert source.snapshot_positions() == {str(p): o for p, o in sorted({0: 10, 1: 10, 2: 10,
                                                                              **reference.next}.items())}
        handed += got.num_rows
    assert handed == len(values)
