"""In-memory stream source (paced, partitioned, not replayable, schema-evolving, split-tagged), sink (dumped on
close), and the harness's truth of the stream."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chaos.checkers.late import check_late_events, expected_late
from chaos.checkers.schema import check_schema
from chaos.experiment.models import WorkloadSpec
from chaos.sides.base import RunContext
from chaos.sides.memory import MemorySourceSide, skipped_ranges, stream_truth
from drivers.memory import MemorySink, MemoryStreamSource
from drivers.runtime.worker import Worker
from drivers.sdk.connector import WorkerContext
from drivers.sdk.contracts import SPLIT_COLUMN
from drivers.sdk.history import History, read_history
from drivers.sdk.records import SCHEMA, SCHEMA_V1, SCHEMA_V2, expected_table, versioned_tables
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


# --- a schema change mid-stream, split tags, and the harness's truth -------------------------------------


def evolving(records: int, rate: float, change: int, **kw: object) -> MemoryStreamSource:
    return MemoryStreamSource(records, rate, keys=5, payload_size=16, seed=9, crash=Crash(), schema_change_at=change,
                              **kw)  # type: ignore[arg-type]


def test_each_batch_is_under_its_records_schema_version_and_never_spans_the_change(clock: FakeClock) -> None:
    src = evolving(40, 100, change=15)
    src.open(1, 2, None)  # the share 1, 3, 5, ...: its first record under version 2 is id 15, the 8th
    clock.now += 10  # the whole share is due: only the change may split it
    first, second = src.poll(1000, 0.0), src.poll(1000, 0.0)
    assert first.schema == SCHEMA_V1 and first.column("id").to_pylist() == list(range(1, 15, 2))
    assert second.schema == SCHEMA_V2 and second.column("id").to_pylist() == list(range(15, 40, 2))
    assert src.exhausted()
    assert max(second.column("score").to_pylist()) > 2**31  # values only the widened type holds


def test_a_restart_past_the_change_hands_out_the_new_version_only(clock: FakeClock) -> None:
    src = evolving(100, 10, change=30, started_at=clock.now - 5)  # records 0..50 are due
    src.open(0, 1, {"next": 3})
    batch = src.poll(1000, 0.0)
    assert batch.schema == SCHEMA_V2 and batch.column("id").to_pylist()[0] == 50


def test_records_carry_their_split_only_when_asked_and_the_same_one_after_a_restart(clock: FakeClock) -> None:
    plain = source(20, 1000)
    plain.open(1, 2, None)
    assert SPLIT_COLUMN not in plain.poll(1000, 0.0).column_names
    tagged = source(20, 1000, started_at=clock.now, with_split=True)
    tagged.open(1, 2, None)
    clock.now += 1
    assert set(tagged.poll(1000, 0.0).column(SPLIT_COLUMN).to_pylist()) == {"w1"}
    again = source(20, 1000, started_at=clock.now - 1, with_split=True)
    again.open(1, 2, {"next": 2})
    assert set(again.poll(1000, 0.0).column(SPLIT_COLUMN).to_pylist()) == {"w1"}


def test_the_sink_dumps_both_schema_versions_under_the_final_schema_with_their_values(tmp_path: Path) -> None:
    spec = WorkloadSpec(records=40, rate=10, keys=5, payload_size=16, schema_change_at=25)
    before, after = versioned_tables(spec, 4)
    sink = MemorySink(tmp_path / "memory.parquet", Crash())
    sink.write(before)
    sink.commit(sink.prepare(1))
    sink.write(after)
    sink.commit(sink.prepare(2))
    sink.close()
    dumped = pq.read_table(tmp_path / "memory.parquet")
    expected = expected_table(spec, 4)
    assert dumped.schema.field("score").type == pa.int64() and {"tag", "region"} <= set(dumped.column_names)
    assert dumped.select(expected.column_names).equals(expected)
    assert dumped.column("score")[30].as_py() == 2**31 + 30  # past int32, kept whole
    assert check_schema(expected, dumped).status == "pass"


def test_the_truth_gives_each_record_its_split_and_place_and_the_change_s_columns(tmp_path: Path) -> None:
    workload = WorkloadSpec(records=12, rate=10, schema_change_at=6, late_every=4, lateness=2.0)
    truth = MemorySourceSide(context(tmp_path, workload, workers=2, history=[])).truth()
    assert truth.column("partition").to_pylist() == [i % 2 for i in range(12)]
    assert truth.column("offset").to_pylist() == [i // 2 for i in range(12)]
    assert truth.schema.field("partition").type == pa.int32() and truth.schema.field("offset").type == pa.int64()
    expected = expected_table(workload, 5)
    for name in ("id", "key", "event_time", "payload", "checksum", "score", "tag", "region"):
        assert truth.column(name).equals(expected.column(name)), name
    assert not any(truth.column("skipped").to_pylist())
    assert expected_late(truth, 1000).to_pylist() == [3, 7, 11]  # every 4th, 2 s behind its split


def test_the_source_side_passes_the_workload_s_change_and_lateness_to_the_workers(tmp_path: Path) -> None:
    workload = WorkloadSpec(records=12, rate=10, schema_change_at=6, late_every=4, lateness=2.0)
    settings = MemorySourceSide(context(tmp_path, workload, workers=1, history=[])).settings()
    assert (settings["schema_change_at"], settings["late_every"], settings["lateness"]) == (6, 4, 2.0)
    src = MemoryStreamSource.create(settings, WorkerContext("job", 0, 1, tmp_path, Crash(), with_split=True))
    assert src.spec.schema_change_at == 6 and src.spec.late_every == 4 and src.spec.lateness == 2.0
    assert src.with_split


def test_the_truth_marks_what_a_restarted_worker_s_source_skipped(tmp_path: Path) -> None:
    restored = {"event": "worker.restored", "worker": 1, "positions": {"next": 3}, "resumed": {"next": 6}}
    fresh = {"event": "worker.restored", "worker": 0, "positions": None, "resumed": {"next": 0}}
    truth = MemorySourceSide(context(tmp_path, WorkloadSpec(records=20, rate=10), 2, [fresh, restored])).truth()
    assert truth.filter(truth["skipped"]).column("id").to_pylist() == [7, 9, 11]  # share 1, places 3 to 5


def test_late_routing_after_a_restart_agrees_with_the_checker_only_without_what_was_skipped(
        clock: FakeClock, tmp_path: Path) -> None:
    """The worker restores its split's watermark from the checkpoint, and the stream resumes past it:
    the first record after the restart (a late one) is on time against the watermark the worker has,
    though it is late against the records the stream lost in between."""
    workload = WorkloadSpec(records=1000, rate=100, late_every=5, lateness=3.0)
    settings = {"records": 1000, "rate": 100, "keys": 100, "payload_size": 64, "seed": 5, "late_every": 5,
                "lateness": 3.0, "started_at": clock.now}
    history = History(tmp_path / "history.jsonl", "worker-0")
    crash_ctx = WorkerContext("job", 0, 1, tmp_path, Crash(), with_split=True, history=history)
    worker = SimpleNamespace(config=SimpleNamespace(allowed_lateness=1.0, workers=1), watermarks={}, index=0,
                             history=history, late_sink=None, sink=MemorySink(tmp_path / "m.parquet", Crash()))
    main, late = [], []

    def route(src: MemoryStreamSource, until: float) -> None:
        while clock.now < until and not src.exhausted():
            rows = src.poll(1000, 0.01)
            if rows.num_rows:
                on_time, routed = Worker._route(worker, rows)  # type: ignore[arg-type]
                main.append(on_time)
                late.append(routed)

    first = MemoryStreamSource.create(settings, crash_ctx)
    first.open(0, 1, None)
    route(first, clock.now + 0.4)
    checkpoint = (first.snapshot_positions(), dict(worker.watermarks))  # a checkpoint, then 0.1 s more
    route(first, clock.now + 0.1)
    clock.now += 2.945  # down: the record due when it is back (344) is a late one
    worker.source, (positions, worker.watermarks) = MemoryStreamSource.create(settings, crash_ctx), checkpoint
    del main[:]  # the sink's rows died with the process; the late output is durable
    Worker._restore(worker, {"handles": [], "positions": positions, "checkpoint_id": 1})  # type: ignore[arg-type]
    assert worker.source.snapshot_positions() == {"next": 344} and 344 % 5 == 4
    route(worker.source, clock.now + 20)
    outputs = pa.concat_tables(main), pa.concat_tables(late)
    expected = expected_table(workload, 5)
    truth = stream_truth(expected, 1, skipped_ranges(read_history(history.path)))
    assert positions == {"next": 41} and truth.filter(truth["skipped"]).column("id").to_pylist() == list(range(41, 344))
    assert check_late_events(truth, *outputs, allowed_ms=1000).status == "pass"
    everything = truth.drop_columns(["skipped"])  # judged against records the worker never saw
    verdict = check_late_events(everything, *outputs, allowed_ms=1000)
    assert verdict.status == "fail" and verdict.counts["late_in_main_output"] == 1  # 344, the first after the restart
    assert 344 in expected_late(everything, 1000).to_pylist() and 344 in outputs[0].column("id").to_pylist()


def context(tmp_path: Path, workload: WorkloadSpec, workers: int, history: list[dict[str, object]]) -> RunContext:
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in history))
    experiment = SimpleNamespace(workload=workload, seed=5, pipeline=SimpleNamespace(workers=workers))
    return SimpleNamespace(experiment=experiment, history=SimpleNamespace(path=path),  # type: ignore[return-value]
                           run_dir=tmp_path)
