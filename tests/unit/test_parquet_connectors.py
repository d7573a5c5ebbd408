"""Parquet batch source, plain sink and two-phase sink, on real files read back with pyarrow.

Crashes are simulated by a hook that raises at one named point; the instance that "crashed" is
then abandoned and a new one recovers, as a restarted worker would.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from chaos.experiment.models import WorkloadSpec
from drivers.parquet_batch_source import ParquetBatchSource
from drivers.parquet_sinks import CommitError, ParquetSink, TwoPhaseParquetSink
from drivers.sdk.records import expected_table
from tests.unit.crashes import Crash, SimulatedCrash

ROWS = 100
TABLE = expected_table(WorkloadSpec(records=ROWS, rate=50, keys=5, payload_size=16), seed=3)


def visible_ids(directory: Path) -> list[int]:
    """What an independent reader sees: pyarrow's dataset, with its default hidden-file rules."""
    if not directory.exists():
        return []
    table = ds.dataset(directory, format="parquet").to_table()
    return table.column("id").to_pylist() if table.num_rows else []


def assert_exactly_once(ids: list[int], expected: range = range(ROWS)) -> None:
    dups = {i: n for i, n in Counter(ids).items() if n > 1}
    assert not dups, f"duplicates: {dups}"
    assert sorted(ids) == list(expected), f"missing: {sorted(set(expected) - set(ids))}"


def hidden_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# -- batch source ---------------------------------------------------------------------------------
@pytest.fixture
def input_dir(tmp_path: Path) -> Path:
    """5 files of 20 rows in row groups of 7 (7 + 7 + 6), plus files a reader must skip."""
    d = tmp_path / "input"
    d.mkdir()
    for f in range(5):
        pq.write_table(TABLE.slice(f * 20, 20), d / f"in-{f}.parquet", row_group_size=7)
    pq.write_table(TABLE.slice(0, 5), d / ".staged.parquet")
    pq.write_table(TABLE.slice(0, 5), d / "_meta.parquet")
    return d


def drain(source: ParquetBatchSource) -> list[pa.Table]:
    tables = []
    while not source.exhausted():
        tables.append(source.poll(1000, 0.1))
    return tables


def test_two_workers_cover_every_row_exactly_once(input_dir: Path) -> None:
    ids: list[int] = []
    for worker in (0, 1):
        crash = Crash()
        source = ParquetBatchSource(input_dir, crash)
        source.open(worker, 2, None)
        tables = drain(source)
        assert all(t.num_rows in (6, 7) for t in tables)  # whole row groups
        assert crash.points == ["source.poll.after"] * len(tables)
        owned = {"in-0.parquet", "in-2.parquet", "in-4.parquet"} if worker == 0 else {"in-1.parquet", "in-3.parquet"}
        assert source.snapshot_positions() == {name: 3 for name in owned}
        ids += [i for t in tables for i in t.column("id").to_pylist()]
        source.close()
    assert_exactly_once(ids)


def test_restore_from_snapshot_resumes_exactly_after(input_dir: Path) -> None:
    source = ParquetBatchSource(input_dir, Crash())
    source.open(0, 1, None)
    head = [source.poll(1000, 0.1) for _ in range(4)]  # into the second file
    snapshot = source.snapshot_positions()
    assert snapshot["in-0.parquet"] == 3 and snapshot["in-1.parquet"] == 1
    tail = drain(source)
    source.close()

    restored = ParquetBatchSource(input_dir, Crash())
    restored.open(0, 1, snapshot)
    again = drain(restored)
    assert [t.column("id").to_pylist() for t in again] == [t.column("id").to_pylist() for t in tail]
    assert_exactly_once([i for t in head + again for i in t.column("id").to_pylist()])


def test_exhausted_source_returns_empty_and_ack_is_a_crash_point(input_dir: Path) -> None:
    crash = Crash()
    source = ParquetBatchSource(input_dir, crash)
    source.open(1, 2, {"in-1.parquet": 3, "in-3.parquet": 2, "in-0.parquet": 0})
    assert not source.exhausted()
    assert source.poll(1000, 0.1).column("id").to_pylist() == list(range(74, 80))
    assert source.exhausted() and source.poll(1000, 0.1).num_rows == 0
    source.ack(source.snapshot_positions())
    assert crash.points[-1] == "source.ack.before"


# -- plain sink -----------------------------------------------------------------------------------
def test_plain_sink_makes_prepared_data_visible_at_once(tmp_path: Path) -> None:
    crash = Crash()
    sink = ParquetSink(tmp_path / "out", "job", 0, crash)
    sink.write(TABLE.slice(0, 60))
    sink.write(TABLE.slice(60))
    handle = sink.prepare(1)
    assert handle.sink == "parquet" and crash.points == ["sink.prepare.before", "sink.write.mid", "sink.prepare.after"]
    assert_exactly_once(visible_ids(tmp_path / "out"))  # before any commit
    sink.commit(handle)
    assert_exactly_once(visible_ids(tmp_path / "out"))
    assert sink.prepare(2).payload == {"files": []}


# -- two-phase sink -------------------------------------------------------------------------------
def new_sink(out: Path, crash: Crash | None = None) -> TwoPhaseParquetSink:
    return TwoPhaseParquetSink(out, "job", 0, crash or Crash(), max_file_rows=30)


def write_all(sink: TwoPhaseParquetSink) -> None:
    for start in range(0, ROWS, 10):
        sink.write(TABLE.slice(start, 10))


def test_two_phase_nothing_visible_before_commit_and_commit_is_idempotent(tmp_path: Path) -> None:
    out = tmp_path / "out"
    crash = Crash()
    sink = new_sink(out, crash)
    write_all(sink)
    assert visible_ids(out) == []
    handle = sink.prepare(1)
    assert visible_ids(out) == []
    assert len(handle.payload["files"]) == 4  # rolled every 30 rows
    sink.commit(handle)
    assert_exactly_once(visible_ids(out))
    sink.commit(handle)
    new_sink(out).commit(handle)
    assert_exactly_once(visible_ids(out))
    assert hidden_files(out) == []
    assert (out / "_manifests" / "job" / "c1-w0.json").exists()
    assert crash.points == ["sink.prepare.before", "sink.write.mid", "sink.prepare.after",
                            "sink.commit.before", "sink.commit.mid", "sink.commit.after"]


def test_empty_prepare_has_no_files(tmp_path: Path) -> None:
    sink = new_sink(tmp_path / "out")
    handle = sink.prepare(7)
    assert handle.payload == {"files": []}
    sink.commit(handle)
    assert visible_ids(tmp_path / "out") == []


@pytest.mark.parametrize("point", ["sink.prepare.before", "sink.write.mid", "sink.prepare.after"])
def test_crash_while_preparing_then_recover_and_replay(tmp_path: Path, point: str) -> None:
    """No handle reached the coordinator, so the restored checkpoint lists none: the restarted
    worker recovers with [] and the source replays the rows into a fresh checkpoint."""
    out = tmp_path / "out"
    sink = new_sink(out, Crash(fire_on=point))
    write_all(sink)
    with pytest.raises(SimulatedCrash):
        sink.prepare(1)

    restarted = new_sink(out)
    restarted.recover([])
    assert restarted.orphans_removed > 0 and hidden_files(out) == []
    assert visible_ids(out) == []
    write_all(restarted)
    restarted.commit(restarted.prepare(1))
    assert_exactly_once(visible_ids(out))


@pytest.mark.parametrize("point", ["sink.commit.before", "sink.commit.mid", "sink.commit.after"])
def test_crash_while_committing_then_recover_with_the_persisted_handle(tmp_path: Path, point: str) -> None:
    out = tmp_path / "out"
    sink = new_sink(out, Crash(fire_on=point))
    write_all(sink)
    handle = sink.prepare(1)
    sink.write(TABLE.slice(0, 5))
    sink.prepare(2)  # prepared, but its checkpoint is never persisted
    with pytest.raises(SimulatedCrash):
        sink.commit(handle)

    restarted = new_sink(out)
    restarted.recover([handle])
    assert_exactly_once(visible_ids(out))
    assert restarted.orphans_removed == 1 and hidden_files(out) == []


def test_recover_without_persisted_checkpoint_removes_everything_staged(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sink = new_sink(out)
    write_all(sink)
    sink.prepare(1)
    sink.write(TABLE.slice(0, 10))  # in-progress, never prepared
    other = TwoPhaseParquetSink(out, "job", 1, Crash())  # another worker's staging is not ours
    other.write(TABLE.slice(0, 10))
    other.prepare(1)

    restarted = new_sink(out)
    restarted.recover([])
    assert visible_ids(out) == []
    assert restarted.orphans_removed == 5  # 4 pending + 1 in-progress
    assert [n.split("-w")[1][:2] for n in hidden_files(out)] == ["1-"]


def test_recommit_after_crash_mid_commit_finishes_the_remaining_renames(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sink = new_sink(out, Crash(fire_on="sink.commit.mid"))
    write_all(sink)
    handle = sink.prepare(1)
    with pytest.raises(SimulatedCrash):
        sink.commit(handle)
    assert sorted(visible_ids(out)) == list(range(30))  # the first part file only
    new_sink(out).commit(handle)
    assert_exactly_once(visible_ids(out))


def test_commit_refuses_to_lose_data_silently(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sink = new_sink(out)
    write_all(sink)
    handle = sink.prepare(1)
    sink.abort(handle)
    assert hidden_files(out) == []
    with pytest.raises(CommitError, match="lost"):
        sink.commit(handle)


def test_schema_change_mid_checkpoint_rolls_to_a_new_part_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sink = new_sink(out)
    sink.write(TABLE.slice(0, 50))
    widened = TABLE.slice(50).append_column("region", pa.array(["eu"] * 50))
    sink.write(widened)
    handle = sink.prepare(1)
    sink.commit(handle)
    finals = [final for _, final in handle.payload["files"]]
    assert [pq.read_schema(out / f).names[-1] for f in finals] == ["checksum", "region"]
    assert_exactly_once([i for f in finals for i in pq.read_table(out / f).column("id").to_pylist()])


def test_a_failed_write_poisons_the_sink_until_recover(tmp_path: Path) -> None:
    """A real filesystem error (the output path is a file): no later prepare may hand out a handle."""
    not_a_dir = tmp_path / "out"
    not_a_dir.write_text("occupied")
    sink = new_sink(not_a_dir)
    with pytest.raises(OSError):
        sink.write(TABLE)
    with pytest.raises(CommitError, match="recover"):
        sink.prepare(1)
    not_a_dir.unlink()
    sink.recover([])
    write_all(sink)
    sink.commit(sink.prepare(1))
    assert_exactly_once(visible_ids(not_a_dir))
