"""Delta batch source, plain sink and two-phase sink, on real tables read back with deltalake.

Every check of what a reader sees goes through the official reader, `deltalake.DeltaTable(uri)`
(`to_pyarrow_table`, `version`, `history`, `transaction_version`), never through the driver.
Crashes are simulated by a hook that raises at one named point; the instance that "crashed" is
then abandoned and a new one recovers, as a restarted worker would.
"""

from __future__ import annotations

import errno
import json
import threading
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, CommitProperties, Transaction

from chaos.experiment.models import WorkloadSpec
from drivers.delta.batch_sink import DeltaBatchSink
from drivers.delta.sinks import DeltaTwoPhaseSink
from drivers.delta.source import DeltaBatchSource
from drivers.sdk.contracts import CommitError, CommitHandle
from drivers.sdk.diskfaults import DiskFaults
from drivers.sdk.records import SCHEMA, expected_table
from faults.disk import write_control as inject
from tests.unit.crashes import Crash, SimulatedCrash
from tests.unit.test_disk_faults import FailAt

ROWS = 100
TABLE = expected_table(WorkloadSpec(records=ROWS, rate=50, keys=5, payload_size=16), seed=3)


# -- the independent reader ------------------------------------------------------------------------
def read(uri: Path) -> pa.Table:
    """The official reader. The explicit local filesystem is only there because the default one
    (a Python filesystem over delta-rs, driven from pyarrow's threads) makes the interpreter abort
    at exit now and then ("terminate called without an active exception", cf. delta-rs #2184)."""
    return DeltaTable(str(uri)).to_pyarrow_table(
        filesystem=pafs.SubTreeFileSystem(str(uri), pafs.LocalFileSystem()))


def visible_ids(uri: Path) -> list[int]:
    if not DeltaTable.is_deltatable(str(uri)):
        return []
    return read(uri).column("id").to_pylist()


def version(uri: Path) -> int:
    return DeltaTable(str(uri)).version()


def assert_exactly_once(ids: list[int], expected: range = range(ROWS)) -> None:
    dups = {i: n for i, n in Counter(ids).items() if n > 1}
    assert not dups, f"duplicates: {dups}"
    assert sorted(ids) == list(expected), f"missing: {sorted(set(expected) - set(ids))}"


def staged_files(uri: Path, worker: int = 0) -> list[str]:
    """Every file a worker's sink wrote in the table directory (committed or not), temporaries included."""
    if not uri.exists():
        return []
    return sorted(p.name for p in uri.iterdir() if p.is_file() and f"part-job-w{worker}-" in p.name)


def committed_files(uri: Path) -> set[str]:
    if not DeltaTable.is_deltatable(str(uri)):
        return set()
    return {Path(u).name for u in DeltaTable(str(uri)).file_uris()}


# -- batch source ---------------------------------------------------------------------------------
@pytest.fixture
def source_table(tmp_path: Path) -> Path:
    """5 appends (5 files) of 20 rows in row groups of 7 (7 + 7 + 6): versions 0..4."""
    uri = tmp_path / "source"
    for f in range(5):
        write_deltalake(str(uri), TABLE.slice(f * 20, 20), mode="append",
                        writer_properties=WriterProperties(max_row_group_size=7))
    assert version(uri) == 4 and read(uri).num_rows == ROWS
    return uri


def drain(source: DeltaBatchSource) -> list[pa.Table]:
    tables = []
    while not source.exhausted():
        tables.append(source.poll(1000, 0.1))
    return tables


def ids_of(tables: list[pa.Table]) -> list[int]:
    return [i for t in tables for i in t.column("id").to_pylist()]


def test_source_two_workers_cover_every_row_exactly_once(source_table: Path) -> None:
    ids: list[int] = []
    files: list[str] = []
    for worker in (0, 1):
        crash = Crash()
        source = DeltaBatchSource(str(source_table), crash)
        source.open(worker, 2, None)
        tables = drain(source)
        assert all(t.num_rows in (6, 7) for t in tables)  # whole row groups
        assert all(t.schema.equals(SCHEMA) for t in tables)
        assert crash.points == ["source.poll.after"] * len(tables)
        positions = source.snapshot_positions()
        assert positions["version"] == 4
        assert len(positions["files"]) == (3 if worker == 0 else 2)
        assert set(positions["files"].values()) == {3}
        json.dumps(positions)  # positions are persisted with the checkpoint
        files += positions["files"]
        ids += ids_of(tables)
        source.close()
    assert sorted(files) == sorted(Path(u).name for u in DeltaTable(str(source_table)).file_uris())
    assert_exactly_once(ids)
    assert sorted(ids) == sorted(read(source_table).column("id").to_pylist())


def test_source_restore_reads_the_same_snapshot_after_the_table_moved_on(source_table: Path) -> None:
    source = DeltaBatchSource(str(source_table), Crash())
    source.open(0, 1, None)
    head = [source.poll(1000, 0.1) for _ in range(4)]  # into the second file
    snapshot = json.loads(json.dumps(source.snapshot_positions()))
    tail = drain(source)
    source.close()

    extra = TABLE.slice(0, 10).set_column(0, "id", pa.array(range(1000, 1010), pa.int64()))
    write_deltalake(str(source_table), extra, mode="append")  # version 5, not in the snapshot

    restored = DeltaBatchSource(str(source_table), Crash())
    restored.open(0, 1, snapshot)
    again = drain(restored)
    assert restored.snapshot_positions()["version"] == 4
    assert [t.column("id").to_pylist() for t in again] == [t.column("id").to_pylist() for t in tail]
    assert_exactly_once(ids_of(head + again))

    fresh = DeltaBatchSource(str(source_table), Crash())
    fresh.open(0, 1, None)  # no checkpoint: the current version, with the new rows
    assert fresh.snapshot_positions()["version"] == 5
    assert sorted(ids_of(drain(fresh))) == list(range(ROWS)) + list(range(1000, 1010))


def test_source_exhausted_returns_empty_and_ack_is_a_crash_point(source_table: Path) -> None:
    crash = Crash()
    source = DeltaBatchSource(str(source_table), crash)
    source.open(1, 2, None)
    files = sorted(source.snapshot_positions()["files"])
    start = {"version": 4, "files": {files[0]: 3, files[1]: 2}}
    source.open(1, 2, start)
    assert not source.exhausted()
    assert source.poll(1000, 0.1).num_rows == 6
    assert source.exhausted() and source.poll(1000, 0.1).num_rows == 0
    source.ack(source.snapshot_positions())
    assert crash.points == ["source.poll.after", "source.ack.before"]
    with pytest.raises(ValueError):
        source.open(2, 2, None)


# -- plain sink -----------------------------------------------------------------------------------
def test_batch_sink_appends_at_prepare_and_merges_new_columns(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    crash = Crash()
    sink = DeltaBatchSink(str(uri), "job", 0, crash)
    sink.write(TABLE.slice(0, 30))
    sink.write(TABLE.slice(30, 30))
    handle = sink.prepare(1)
    assert handle.sink == "delta-batch" and handle.payload == {"rows": 60}
    assert crash.points == ["sink.prepare.before", "sink.prepare.after"]
    assert_exactly_once(visible_ids(uri), range(60))  # visible before any commit
    sink.commit(handle)
    wider = TABLE.slice(60).append_column("region", pa.array(["eu"] * 40))
    sink.write(wider)
    sink.prepare(2)
    assert_exactly_once(visible_ids(uri))
    table = read(uri)
    assert table.schema.names == SCHEMA.names + ["region"]
    regions = dict(zip(table.column("id").to_pylist(), table.column("region").to_pylist()))
    assert regions[0] is None and regions[99] == "eu"
    v = version(uri)  # the creation, an append, the new column, an append
    assert v == 3 and sink.prepare(3).payload == {"rows": 0} and version(uri) == v  # no empty version


def test_batch_sink_replay_after_a_crash_duplicates(tmp_path: Path) -> None:
    """Best effort: the rows landed at prepare, the checkpoint was never persisted, the source
    replays them, and they land again."""
    uri = tmp_path / "out"
    sink = DeltaBatchSink(str(uri), "job", 0, Crash(fire_on="sink.prepare.after"))
    sink.write(TABLE)
    with pytest.raises(SimulatedCrash):
        sink.prepare(1)
    restarted = DeltaBatchSink(str(uri), "job", 0, Crash())
    restarted.recover([])
    restarted.write(TABLE)
    restarted.commit(restarted.prepare(1))
    assert Counter(visible_ids(uri)) == Counter({i: 2 for i in range(ROWS)})


# -- two-phase sink -------------------------------------------------------------------------------
def new_sink(uri: Path, crash: Crash | None = None, worker: int = 0) -> DeltaTwoPhaseSink:
    return DeltaTwoPhaseSink(str(uri), "job", worker, crash or Crash(), max_file_rows=30)


def write_rows(sink: DeltaTwoPhaseSink, rows: range = range(ROWS)) -> None:
    for start in range(rows.start, rows.stop, 10):
        sink.write(TABLE.slice(start, min(10, rows.stop - start)))


def test_two_phase_invisible_before_commit_visible_after_and_idempotent(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    crash = Crash()
    sink = new_sink(uri, crash)
    write_rows(sink)
    handle = sink.prepare(1)
    assert handle.sink == "delta-2pc" and handle.payload["app_id"] == "job-w0"
    assert handle.payload["files"] == [f"part-job-w0-c1-{n}.parquet" for n in range(4)]  # 30 rows each
    assert staged_files(uri) == handle.payload["files"]  # durable ...
    assert visible_ids(uri) == []  # ... and invisible (no table yet)

    # A table that exists (another worker's commit) shows none of the prepared rows either.
    DeltaTable.create(str(uri), SCHEMA)
    assert visible_ids(uri) == []

    sink.commit(handle)
    assert_exactly_once(visible_ids(uri))
    v = version(uri)
    assert DeltaTable(str(uri)).transaction_version("job-w0") == 1
    assert DeltaTable(str(uri)).count() == ROWS  # the add actions carry numRecords
    sink.commit(handle)
    new_sink(uri).commit(handle)
    CommitHandle.model_validate_json(handle.model_dump_json())  # persists through a checkpoint store
    new_sink(uri).commit(CommitHandle.model_validate_json(handle.model_dump_json()))
    assert version(uri) == v, "a re-commit must not create a Delta version"
    assert_exactly_once(visible_ids(uri))
    assert [h["operation"] for h in DeltaTable(str(uri)).history()] == ["WRITE", "CREATE TABLE"]
    assert crash.points == ["sink.prepare.before", "sink.write.mid", "sink.write.mid", "sink.write.mid",
                            "sink.prepare.after", "sink.commit.before", "sink.commit.after"]


def test_two_phase_checkpoints_accumulate_and_empty_ones_commit_nothing(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    sink = new_sink(uri)
    write_rows(sink, range(0, 50))
    sink.commit(sink.prepare(1))
    v = version(uri)
    empty = sink.prepare(2)
    assert empty.payload["files"] == []
    sink.commit(empty)
    assert version(uri) == v
    write_rows(sink, range(50, ROWS))
    sink.commit(sink.prepare(3))
    assert_exactly_once(visible_ids(uri))
    assert DeltaTable(str(uri)).transaction_version("job-w0") == 3


@pytest.mark.parametrize("point", ["sink.prepare.before", "sink.write.mid", "sink.prepare.after"])
def test_crash_while_preparing_then_recover_and_replay(tmp_path: Path, point: str) -> None:
    """No handle reached the coordinator, so the restored checkpoint holds only checkpoint 1's:
    the restarted worker recovers with it and the source replays the rest into checkpoint 2."""
    uri = tmp_path / "out"
    crash = Crash()
    sink = new_sink(uri, crash)
    write_rows(sink, range(0, 40))
    first = sink.prepare(1)
    sink.commit(first)
    crash.fire_on = point
    write_rows(sink, range(40, ROWS))
    with pytest.raises(SimulatedCrash):
        sink.prepare(2)
    assert_exactly_once(visible_ids(uri), range(40))

    restarted = new_sink(uri)
    restarted.recover([first])
    expected_orphans = {"sink.prepare.before": 0, "sink.write.mid": 1, "sink.prepare.after": 2}[point]
    assert restarted.orphans_removed == expected_orphans
    assert staged_files(uri) == sorted(committed_files(uri))
    assert_exactly_once(visible_ids(uri), range(40))
    write_rows(restarted, range(40, ROWS))
    restarted.commit(restarted.prepare(2))
    assert_exactly_once(visible_ids(uri))


@pytest.mark.parametrize("point", ["sink.commit.before", "sink.commit.after"])
def test_crash_while_committing_then_recover_with_the_persisted_handle(tmp_path: Path, point: str) -> None:
    uri = tmp_path / "out"
    crash = Crash()
    sink = new_sink(uri, crash)
    write_rows(sink, range(0, 40))
    first = sink.prepare(1)
    sink.commit(first)
    crash.fire_on = point
    write_rows(sink, range(40, ROWS))
    second = sink.prepare(2)
    with pytest.raises(SimulatedCrash):
        sink.commit(second)
    landed = point == "sink.commit.after"
    assert_exactly_once(visible_ids(uri), range(ROWS if landed else 40))
    v = version(uri)

    restarted = new_sink(uri)
    restarted.recover([first, second])  # the restored checkpoint lists both, in any order
    assert_exactly_once(visible_ids(uri))
    assert version(uri) == (v if landed else v + 1)
    assert restarted.orphans_removed == 0
    assert staged_files(uri) == sorted(committed_files(uri))
    restarted.recover([second, first])
    assert version(uri) == (v if landed else v + 1)
    assert_exactly_once(visible_ids(uri))


def test_lost_commit_response_then_recommit_is_exactly_once(tmp_path: Path) -> None:
    """The Delta commit landed, the worker died before reporting it (sink.commit.after): the
    coordinator re-commits the same handle on recovery, and the txn action absorbs it."""
    uri = tmp_path / "out"
    sink = new_sink(uri, Crash(fire_on="sink.commit.after"))
    write_rows(sink)
    handle = sink.prepare(1)
    with pytest.raises(SimulatedCrash):
        sink.commit(handle)
    v = version(uri)
    crash = Crash()
    new_sink(uri, crash).recover([handle])
    assert crash.points == []  # skipped before sink.commit.before: nothing to do
    assert version(uri) == v
    assert_exactly_once(visible_ids(uri))


def test_recover_without_handles_removes_orphans_and_shows_nothing(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    sink = new_sink(uri)
    write_rows(sink)
    handle = sink.prepare(1)
    (uri / ".part-job-w0-c1-9.parquet.inprogress").write_bytes(b"torn")  # a crash mid-file
    other_worker = new_sink(uri, worker=1)
    other_worker.write(TABLE.slice(0, 5))
    kept = other_worker.prepare(1)
    assert len(staged_files(uri)) == 5 and len(staged_files(uri, worker=1)) == 1

    restarted = new_sink(uri)
    restarted.recover([])
    assert restarted.orphans_removed == 5
    assert staged_files(uri) == []
    assert visible_ids(uri) == []
    assert (uri / kept.payload["files"][0]).exists(), "another worker's staged file is not ours to remove"
    with pytest.raises(CommitError, match="lost"):
        restarted.commit(handle)  # never silently: its files are gone and it is not in the log
    assert visible_ids(uri) == []


def test_abort_deletes_staged_files_and_refuses_a_committed_checkpoint(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    sink = new_sink(uri)
    write_rows(sink, range(0, 50))
    aborted = sink.prepare(1)
    sink.abort(aborted)
    assert staged_files(uri) == []
    write_rows(sink, range(0, 50))
    pending = sink.prepare(2)
    write_rows(sink, range(0, 50))
    with pytest.raises(CommitError, match="already exists"):
        sink.prepare(2)  # never overwrite a file a pending handle may still commit
    sink.recover([])
    assert staged_files(uri) == [] and pending.payload["files"]
    write_rows(sink, range(0, 50))
    handle = sink.prepare(1)  # the id of an aborted checkpoint may be reused
    sink.commit(handle)
    with pytest.raises(CommitError):
        sink.abort(handle)
    with pytest.raises(CommitError):
        sink.prepare(1)  # but not the id of a committed one: commit would skip it
    assert_exactly_once(visible_ids(uri), range(50))


def test_prepare_failure_poisons_until_recover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = tmp_path / "out"
    sink = new_sink(uri)
    write_rows(sink)
    import drivers.delta.sinks as delta

    calls = {"n": 0}
    real = delta.write_durably

    def failing(table, directory, name, **options):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(5, "Input/output error")
        return real(table, directory, name, **options)

    monkeypatch.setattr(delta, "write_durably", failing)
    with pytest.raises(OSError):
        sink.prepare(1)
    with pytest.raises(CommitError, match="recover"):
        sink.write(TABLE.slice(0, 1))
    monkeypatch.setattr(delta, "write_durably", real)
    sink.recover([])
    assert sink.orphans_removed == 1 and staged_files(uri) == []
    write_rows(sink)
    sink.commit(sink.prepare(1))
    assert_exactly_once(visible_ids(uri))


def test_schema_evolution_adds_a_nullable_column(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    crash = Crash()
    sink = new_sink(uri, crash)
    write_rows(sink, range(0, 50))
    sink.commit(sink.prepare(1))
    sink.write(TABLE.slice(50, 20))
    sink.write(TABLE.slice(70, 30).append_column("region", pa.array(["eu"] * 30)))
    handle = sink.prepare(2)
    assert len(handle.payload["files"]) == 2  # the schema change starts a new file
    sink.commit(handle)
    assert crash.points[-3:] == ["sink.commit.before", "sink.commit.mid", "sink.commit.after"]
    table = read(uri)
    assert table.schema.names == SCHEMA.names + ["region"]
    assert_exactly_once(table.column("id").to_pylist())
    regions = dict(zip(table.column("id").to_pylist(), table.column("region").to_pylist()))
    assert [regions[i] for i in (0, 69, 70, 99)] == [None, None, "eu", "eu"]
    # a later batch without the column, and one with a narrower but losslessly castable type
    sink.write(TABLE.slice(0, 10).set_column(0, "id", pa.array(range(200, 210), pa.int32())))
    sink.commit(sink.prepare(3))
    table = read(uri)
    assert table.schema.field("id").type == pa.int64()
    assert sorted(table.column("id").to_pylist()) == list(range(ROWS)) + list(range(200, 210))


def test_crash_between_schema_change_and_data_commit(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    sink = new_sink(uri, Crash(fire_on="sink.commit.mid"))
    write_rows(sink, range(0, 50))
    sink.commit(sink.prepare(1))
    sink.write(TABLE.slice(50).append_column("region", pa.array(["eu"] * 50)))
    handle = sink.prepare(2)
    with pytest.raises(SimulatedCrash):
        sink.commit(handle)
    assert "region" in read(uri).schema.names  # the column is there, its rows are not
    assert_exactly_once(visible_ids(uri), range(50))
    new_sink(uri).recover([handle])
    assert_exactly_once(visible_ids(uri))


def test_concurrent_commits_of_the_same_handle_land_once(tmp_path: Path) -> None:
    """Two incarnations of one worker pass the transaction_version check together; Delta's
    conflict check fails one commit, whose retry then sees the checkpoint in the log."""
    uri = tmp_path / "out"
    sink = new_sink(uri)
    write_rows(sink)
    handle = sink.prepare(1)
    DeltaTable.create(str(uri), SCHEMA)
    barrier = threading.Barrier(2)

    class Together:
        def hit(self, point: str) -> None:
            if point == "sink.commit.before":
                barrier.wait(timeout=10)

    errors: list[BaseException] = []
    conflicts: list[str] = []

    class Observed(DeltaTwoPhaseSink):
        def _commit_once(self, handle: CommitHandle, state: dict[str, bool]) -> None:
            try:
                super()._commit_once(handle, state)
            except CommitFailedError as e:
                conflicts.append(str(e))
                raise

    def commit() -> None:
        try:
            Observed(str(uri), "job", 0, Together()).commit(handle)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=commit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(conflicts) == 1 and "Concurrent transaction" in conflicts[0]  # the retry path ran
    assert version(uri) == 1
    assert_exactly_once(visible_ids(uri))


def test_workers_commit_concurrently_into_one_table(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    DeltaTable.create(str(uri), SCHEMA)
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            sink = new_sink(uri, worker=worker)
            for c, start in enumerate(range(worker * 10, ROWS, 20), start=1):
                sink.write(TABLE.slice(start, 10))
                sink.commit(sink.prepare(c))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(w,)) for w in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert_exactly_once(visible_ids(uri))
    dt = DeltaTable(str(uri))
    assert (dt.transaction_version("job-w0"), dt.transaction_version("job-w1")) == (5, 5)


# -- disk faults (certification scenario 3: sink write-failure rollback and retry) ----------------
def all_files(uri: Path) -> set[str]:
    """Every file under the table directory, the Delta log included."""
    return {str(p.relative_to(uri)) for p in uri.rglob("*") if p.is_file()} if uri.exists() else set()


def test_batch_sink_disk_fault_fails_the_append_with_nothing_visible_or_left(tmp_path: Path) -> None:
    """A fault switched on through the control file fails the sink's first data-file write: the
    append fails, its temporary is deleted, no log entry is made, and the replay after the heal
    appends every row once (each file and the log commit on their own: test_delta_evolution.py)."""
    uri, ctl = tmp_path / "out", tmp_path / "disk-faults.json"
    sink = DeltaBatchSink(str(uri), "job", 0, Crash(), disk=DiskFaults(ctl))
    sink.write(TABLE.slice(0, 40))
    first = sink.prepare(1)
    sink.commit(first)
    before, v = all_files(uri), version(uri)

    heal = inject(ctl, "eio", "worker-0")
    sink.write(TABLE.slice(40))
    with pytest.raises(OSError) as raised:
        sink.prepare(2)
    assert raised.value.errno == errno.EIO and sink.disk is not None and sink.disk.faulted == {"write": 1}
    assert all_files(uri) == before and version(uri) == v  # not a data file, not a log entry
    assert_exactly_once(visible_ids(uri), range(40))

    heal()  # the worker died of the OSError; its restart replays checkpoint 2 from checkpoint 1
    restarted = DeltaBatchSink(str(uri), "job", 0, Crash(), disk=DiskFaults(ctl))
    restarted.recover([first])
    restarted.write(TABLE.slice(40))
    restarted.commit(restarted.prepare(2))
    assert_exactly_once(visible_ids(uri))


def test_two_phase_disk_fault_at_every_staging_step_shows_nothing_and_the_retry_is_exactly_once(
        tmp_path: Path) -> None:
    """Checkpoint 1 commits; an EIO strikes each checked operation of checkpoint 2's prepare in
    turn (two data files: write, fsync, rename, directory fsync each). The prepare fails, the
    Delta reader sees checkpoint 1 only, and after the heal a restarted sink recovers from
    checkpoint 1 and the replayed checkpoint 2 lands exactly once."""
    struck: list[str] = []
    for k in range(1, 9):
        uri, ctl = tmp_path / f"out-{k}", tmp_path / f"ctl-{k}.json"
        sink = new_sink(uri)
        write_rows(sink, range(0, 40))
        first = sink.prepare(1)
        sink.commit(first)
        disk = sink.disk = FailAt(ctl, fail_at=k)
        write_rows(sink, range(40, ROWS))  # 60 rows: two staged files of 30
        with pytest.raises(OSError) as raised:
            sink.prepare(2)
        assert raised.value.errno == errno.EIO and len(disk.ops) == k
        assert_exactly_once(visible_ids(uri), range(40))
        assert committed_files(uri) == set(first.payload["files"])

        assert disk.heal is not None
        disk.heal()
        restarted = DeltaTwoPhaseSink(str(uri), "job", 0, Crash(), max_file_rows=30, disk=DiskFaults(ctl))
        restarted.recover([first])
        assert staged_files(uri) == sorted(first.payload["files"]), f"op {k} ({disk.ops[-1]}): orphans left"
        write_rows(restarted, range(40, ROWS))
        restarted.commit(restarted.prepare(2))
        assert_exactly_once(visible_ids(uri))
        struck.append(disk.ops[-1])
    assert struck == ["write", "fsync", "rename", "fsync_dir"] * 2


# -- the duplicate detection can fail -------------------------------------------------------------
class NoTxnCheckSink(DeltaTwoPhaseSink):
    """A seeded bug (delta-rs #2580): commit rewrites the staged rows with write_deltalake and a
    txn action, without reading transaction_version first. delta-rs accepts the same txn version
    again, and the new data files are new paths, so a re-commit duplicates every row."""

    def _commit_once(self, handle: CommitHandle, state: dict[str, bool]) -> None:
        staged = pa.concat_tables([pq.read_table(Path(self.table_uri) / name)
                                   for name in handle.payload["files"]])
        write_deltalake(self.table_uri, staged, mode="append", commit_properties=CommitProperties(
            app_transactions=[Transaction(app_id=self.app_id, version=handle.checkpoint_id)]))
        self.crash.hit("sink.commit.after")


def test_a_sink_without_the_txn_check_duplicates_on_recommit(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    sink = NoTxnCheckSink(str(uri), "job", 0, Crash(fire_on="sink.commit.after"))
    write_rows(sink)
    handle = sink.prepare(1)
    with pytest.raises(SimulatedCrash):
        sink.commit(handle)
    assert_exactly_once(visible_ids(uri))
    v = version(uri)
    NoTxnCheckSink(str(uri), "job", 0, Crash()).recover([handle])
    assert version(uri) == v + 1  # delta-rs accepted the same txn version again
    assert DeltaTable(str(uri)).transaction_version("job-w0") == 1
    assert Counter(visible_ids(uri)) == Counter({i: 2 for i in range(ROWS)})
    with pytest.raises(AssertionError, match="duplicates"):
        assert_exactly_once(visible_ids(uri))


class SameFilesNoTxnCheckSink(DeltaTwoPhaseSink):
    """Skips the transaction_version check but re-adds the same staged paths."""

    def _commit_once(self, handle: CommitHandle, state: dict[str, bool]) -> None:
        dt = DeltaTable(self.table_uri)
        actions = [AddAction(a["path"], a["size"], {}, a["modification_time"], True, a["stats"])
                   for a in handle.payload["adds"]]
        dt.create_write_transaction(actions, mode="append", schema=dt.schema(), commit_properties=CommitProperties(
            app_transactions=[Transaction(app_id=self.app_id, version=handle.checkpoint_id)]))


def test_re_adding_the_same_paths_makes_a_version_but_no_duplicate_rows(tmp_path: Path) -> None:
    """Why the seeded bug above rewrites the data: Delta reconciles add actions by path, so a
    re-commit of the very same files is absorbed by the log (a useless version, no duplicates)."""
    uri = tmp_path / "out"
    sink = new_sink(uri)
    write_rows(sink)
    handle = sink.prepare(1)
    sink.commit(handle)
    v = version(uri)
    SameFilesNoTxnCheckSink(str(uri), "job", 0, Crash()).commit(handle)
    assert version(uri) == v + 1
    assert_exactly_once(visible_ids(uri))
