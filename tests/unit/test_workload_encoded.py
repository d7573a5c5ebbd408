"""The fast workload path: the encoded batches are byte for byte `Record.encode`, and the delivery
reports land in the outcome table as the one-tuple-a-record version recorded them."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from chaos.workload.encoded import encoded_batches
from chaos.workload.producer import NO_REPORT, Outcomes, WorkloadProgress
from drivers.sdk.records import Workload, generate

WORKLOADS = [
    Workload(records=3000, rate=1000.0),
    Workload(records=2000, rate=333.0, keys=128, payload_size=9),  # keys a power of two: half the draws rejected
    Workload(records=2000, rate=7.0, keys=1, payload_size=15, schema_change_at=777, late_every=5, lateness=1.5),
    Workload(records=300, rate=1e6, keys=2**31 + 5, payload_size=1001),
    Workload(records=50, rate=10, keys=2**33, payload_size=8),  # beyond one word a key: the plain path
    Workload(records=200_000, rate=50_000, keys=1, payload_size=8),  # often more draws than read ahead
]


def plain(workload: Workload, seed: int) -> list[tuple[bytes, bytes]]:
    return [(r.key.encode(), r.encode()) for r in generate(workload, seed)]


CASES = [(workload, rows) for workload in WORKLOADS for rows in (None, 7)
         if rows is None or workload.records <= 10_000]  # small batches of a large workload show nothing more


@pytest.mark.parametrize(("workload", "rows"), CASES,
                         ids=lambda case: f"{case.records}x{case.payload_size}B-{case.keys}keys"
                         if isinstance(case, Workload) else f"rows-{case}")
def test_batches_are_the_records_encoded(workload, rows):
    batches = list(encoded_batches(workload, 42, rows))
    assert [b.first for b in batches] == [sum(len(b.values) for b in batches[:i]) for i in range(len(batches))]
    assert [(k, v) for b in batches for k, v in zip(b.keys, b.values)] == plain(workload, 42)


def test_a_schema_change_starts_a_batch():
    workload = Workload(records=100, rate=10.0, schema_change_at=40)
    assert [b.first for b in encoded_batches(workload, 1, rows=32)] == [0, 32, 40, 72]


class Message:
    def __init__(self, record_id: int, partition: int = -1, offset: int = -1001):
        self._value = b'{"id":%d,"key":"k1"}' % record_id
        self._partition, self._offset = partition, offset

    def value(self) -> bytes:
        return self._value

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


def test_outcomes_table():
    progress = WorkloadProgress()
    outcomes = Outcomes(6, progress)
    outcomes.delivered(None, Message(0, 1, 10))
    outcomes.delivered(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), Message(1))
    outcomes.delivered(KafkaError(KafkaError._MSG_TIMED_OUT), Message(2))
    outcomes.delivered(None, Message(4, 63, 2**40))
    outcomes.delivered(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS, retriable=True), Message(5))
    rows = outcomes.table(6).to_pylist()
    assert [(r["id"], r["status"], r["partition"], r["offset"]) for r in rows] == [
        (0, "acked", 1, 10), (1, "failed", -1, -1), (2, "indeterminate", -1, -1), (3, "indeterminate", -1, -1),
        (4, "acked", 63, 2**40), (5, "indeterminate", -1, -1)]
    errors = [r["error"] for r in rows]
    assert errors[0] == errors[4] == "" and errors[3] == NO_REPORT
    assert errors[1] == KafkaError(KafkaError.MSG_SIZE_TOO_LARGE).str()
    assert errors[2] == KafkaError(KafkaError._MSG_TIMED_OUT).str() != errors[5]
    assert (progress.acked, progress.failed, progress.indeterminate) == (2, 1, 2)
    assert outcomes.table(2).to_pydict()["status"] == ["acked", "failed"]  # only what was produced
    assert outcomes.table(0).num_rows == 0
