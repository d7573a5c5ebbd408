"""In-memory stream source (paced, partitioned, not replayable) and sink (dumped on close)."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chaos.experiment.models import WorkloadSpec
from drivers.memory import MemorySink, MemoryStreamSource
from drivers.sdk.records import SCHEMA, expected_table
from tests.unit.crashes import Crash


def source(records: int, rate: float, **kw: float) -> MemoryStreamSource:
    return MemoryStreamSource(records, rate, keys=5, payload_size=16, seed=9, crash=Crash(), **kw)


def drain(src: MemoryStreamSource, deadline: float = 10.0) -> list[pa.Table]:
    tables, end = [], time.monotonic() + deadline
    while not src.exhausted() and time.monotonic() < end:
        tables.append(src.poll(1000, 0.05))
    return tables


def test_ids_are_partitioned_by_worker_and_match_the_workload() -> None:
    expected = expected_table(WorkloadSpec(records=60, rate=6000, keys=5, payload_size=16), seed=9)
    got = []
    for worker in range(3):
        src = source(60, 6000)
        src.open(worker, 3, None)
        table = pa.concat_tables(drain(src))
        assert table.schema == SCHEMA
        assert all(i % 3 == worker for i in table.column("id").to_pylist())
        assert src.snapshot_positions() == {"next": 20} and src.exhausted()
        got.append(table)
    assert pa.concat_tables(got).sort_by("id").equals(expected)


class FakeClock:
    """The stream's clock, advanced only by the source's own sleeps: pacing is checked exactly,
    whatever the load on the machine."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("drivers.memory.time", fake)
    return fake


def test_pacing_hands_out_each_record_when_it_is_due_and_not_before(clock: FakeClock) -> None:
    src = source(100, 200)  # two workers: 100 records/s each; record i of a share is due at i/100 s
    src.open(1, 2, None)
    began = clock.now
    assert src.poll(1000, 0.0).num_rows == 1  # only record 0 is due at open, not the whole share
    clock.now += 0.25
    assert src.poll(1000, 0.0).num_rows == 25  # records 1..25 came due in the quarter second
    rest = drain(src)
    assert 26 + sum(t.num_rows for t in rest) == 50
    assert 0.49 <= clock.now - began <= 0.49 + 0.01  # the last record (49) is due at 0.49 s


def test_poll_waits_at_most_timeout_and_respects_max_records(clock: FakeClock) -> None:
    src = source(10, 1)
    src.open(0, 1, None)
    assert src.poll(1000, 0.0).num_rows == 1  # record 0 is due at open
    began = clock.now
    assert src.poll(1000, 0.1).num_rows == 0
    assert 0.1 <= clock.now - began <= 0.1 + 0.001
    clock.now = began + 1.0
    assert src.poll(1000, 0.1).num_rows == 1 and clock.now == began + 1.0  # due: no wait at all
    backlog = source(100, 10, started_at=clock.now - 5)
    backlog.open(0, 1, None)  # a fresh start begins at the first record, however late
    assert backlog.poll(7, 0.0).column("id").to_pylist() == list(range(7))


def test_restart_ignores_start_and_resumes_at_what_is_due_now(clock: FakeClock) -> None:
    src = source(1000, 10, started_at=clock.now - 10)  # records 0..100 are due after 10 s at 10/s
    src.open(0, 1, {"next": 3})
    assert src.snapshot_positions()["next"] == 100 and src.skipped == 100  # 100, "arriving now", is next
    first = src.poll(1000, 0.0).column("id").to_pylist()
    assert first and first[0] == src.skipped
    with pytest.raises(ValueError, match="started_at"):
        source(10, 10).open(0, 1, {"next": 3})


def test_memory_sink_commits_idempotently_and_dumps_on_close(tmp_path: Path) -> None:
    table = expected_table(WorkloadSpec(records=30, rate=10, keys=5, payload_size=16), seed=1)
    dump = tmp_path / "dump" / "memory.parquet"
    sink = MemorySink(dump, Crash())
    sink.write(table.slice(0, 20))
    h1 = sink.prepare(1)
    sink.write(table.slice(20))
    h2 = sink.prepare(2)
    assert h1.sink == "memory" and h1.payload == {"rows": 20}
    sink.commit(h1)
    sink.commit(h1)
    sink.abort(h2)  # never committed: gone
    sink.close()
    assert pq.read_table(dump).column("id").to_pylist() == list(range(20))


def test_memory_sink_loses_everything_on_a_crash(tmp_path: Path) -> None:
    table = expected_table(WorkloadSpec(records=30, rate=10, keys=5, payload_size=16), seed=1)
    sink = MemorySink(tmp_path / "memory.parquet", Crash())
    sink.write(table)
    handle = sink.prepare(1)
    restarted = MemorySink(tmp_path / "memory.parquet", Crash())  # the old process is gone
    restarted.recover([handle])
    assert restarted.lost_rows == 30
    restarted.close()
    assert pq.read_table(tmp_path / "memory.parquet").num_rows == 0
