"""Delta schema evolution (a column dropped, widened from int32 to int64, added) and per-file disk
faults, on real tables read back with the official reader.

What a reader sees is read with `deltalake.DeltaTable` (to_pyarrow_table, file_uris, version,
history) and the Delta log's own commit files, never through the driver. The workload is the
testbed's: version-1 rows carry an int32 `score` and a `tag`; version-2 rows an int64 `score` with
values only int64 holds, a `region`, and no `tag`.
"""

from __future__ import annotations

import errno
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from chaos.checkers.schema import check_schema
from chaos.experiment.models import WorkloadSpec
from chaos.sides.delta import DeltaSourceSide, delta_committed_units, read_delta
from drivers.delta.batch_sink import DeltaBatchSink
from drivers.delta.evolution import widen
from drivers.delta.sinks import DeltaTwoPhaseSink
from drivers.delta.source import DeltaBatchSource
from drivers.sdk.contracts import CommitError
from drivers.sdk.diskfaults import DiskFaults
from drivers.sdk.events import Event
from drivers.sdk.history import History, read_history
from drivers.sdk.records import expected_table, versioned_tables
from drivers.sdk.schema_watch import SchemaWatch
from tests.unit.crashes import Crash, SimulatedCrash
from tests.unit.test_delta_connectors import all_files, assert_exactly_once, read, version, visible_ids
from tests.unit.test_disk_faults import FailAt

ROWS, CHANGE = 100, 60
SPEC = WorkloadSpec(records=ROWS, rate=50, keys=5, payload_size=16, schema_change_at=CHANGE)
EXPECTED = expected_table(SPEC, seed=5)
V1, V2 = versioned_tables(SPEC, seed=5)
BIG = 2**31  # every version-2 score is at least this: an int32 cannot hold it


def assert_values_preserved(table: pa.Table) -> None:
    """Every row once, each value as the workload made it, under the final (widened) schema."""
    assert_exactly_once(table.column("id").to_pylist())
    assert table.schema.field("score").type == pa.int64()
    assert {"tag", "region"} <= set(table.schema.names)
    verdict = check_schema(EXPECTED, table)
    assert verdict.status == "pass", verdict
    scores = dict(zip(table["id"].to_pylist(), table["score"].to_pylist()))
    assert all(scores[i] >= BIG for i in range(CHANGE, ROWS)) and max(scores.values()) == BIG + ROWS - 1


def referenced_score_types(uri: Path) -> set[pa.DataType]:
    """The physical type of `score` in every data file the current version references."""
    return {pq.read_schema(f).field("score").type for f in DeltaTable(str(uri)).file_uris()}


def commit_actions(uri: Path, version_: int) -> list[dict]:
    text = (uri / "_delta_log" / f"{version_:020d}.json").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def ids_at(uri: Path, version_: int) -> list[int]:
    return sorted(DeltaTable(str(uri), version=version_).to_pyarrow_table(columns=["id"])["id"].to_pylist())


def assert_one_widening_commit(uri: Path, marked: bool = True) -> int:
    """Exactly one commit rewrote the table: it removed every file of the version before it, made
    the score column int64, and changed no row a reader sees. Returns its version. The sinks mark
    theirs (`chaos.operation`); the harness's input writer makes an overwrite."""
    def rewrites(v: int) -> bool:
        info = next(a["commitInfo"] for a in commit_actions(uri, v) if "commitInfo" in a)
        if marked:
            return info.get("chaos.operation") == "widen"
        return info.get("operationParameters", {}).get("mode") == "Overwrite"

    widenings = [v for v in range(version(uri) + 1) if rewrites(v)]
    assert len(widenings) == 1, widenings
    [v] = widenings
    before = {Path(u).name for u in DeltaTable(str(uri), version=v - 1).file_uris()}
    actions = commit_actions(uri, v)
    assert {a["remove"]["path"] for a in actions if "remove" in a} == before and before
    schema = json.loads(next(a["metaData"]["schemaString"] for a in actions if "metaData" in a))
    assert {f["name"]: f["type"] for f in schema["fields"]}["score"] == "long"
    assert ids_at(uri, v) == ids_at(uri, v - 1)  # a rewrite, not a data change
    return v


# -- the batch sink --------------------------------------------------------------------------------
def test_batch_sink_widens_the_table_and_keeps_every_value(tmp_path: Path) -> None:
    uri = tmp_path / "out"
    sink = DeltaBatchSink(str(uri), "job", 0, Crash())
    sink.write(V1.slice(0, 30))
    sink.prepare(1)
    sink.write(V1.slice(30))
    sink.write(V2.slice(0, 10))  # the change lands mid-checkpoint
    sink.prepare(2)
    sink.write(V2.slice(10))
    sink.prepare(3)
    table = read(uri)
    assert_values_preserved(table)
    assert referenced_score_types(uri) == {pa.int64()}  # no narrow file left under the wide schema
    assert_one_widening_commit(uri)
    assert read_delta(str(uri)).sort_by("id").equals(table.sort_by("id"))  # the harness's reader agrees


def test_a_widening_lands_on_the_version_it_read_or_not_at_all(tmp_path: Path) -> None:
    """A rewrite whose snapshot is stale would leave the file committed meanwhile narrow under the
    wide schema: it must fail, change nothing, and leave no file behind."""
    uri = tmp_path / "out"
    write_deltalake(str(uri), V1.slice(0, 20))
    stale = DeltaTable(str(uri))
    write_deltalake(str(uri), V1.slice(20, 20), mode="append")
    before, v = all_files(uri), version(uri)
    wide = V1.schema.set(V1.schema.get_field_index("score"), pa.field("score", pa.int64()))
    with pytest.raises(CommitFailedError):
        widen(stale, uri, wide, lambda k: f"rewritten-{k}.parquet", disk=None, who="worker-0")
    assert all_files(uri) == before and version(uri) == v and referenced_score_types(uri) == {pa.int32()}
    widen(DeltaTable(str(uri)), uri, wide, lambda k: f"rewritten-{k}.parquet", disk=None, who="worker-0")
    assert referenced_score_types(uri) == {pa.int64()} and sorted(read(uri)["id"].to_pylist()) == list(range(40))


def test_batch_sink_retries_an_append_that_raced_a_widening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker 1 read the table while it was narrow; worker 0 widens it before worker 1 commits. The
    conflicting append is redone under the wide schema: nothing lost, nothing twice, nothing narrow."""
    uri = tmp_path / "out"
    first, second = DeltaBatchSink(str(uri), "job", 0, Crash()), DeltaBatchSink(str(uri), "job", 1, Crash())
    first.write(V1.slice(0, 30))
    first.prepare(1)
    real = DeltaTable.create_write_transaction
    raced: list[int] = []

    def widened_meanwhile(dt: DeltaTable, *args: object, **kwargs: object) -> None:
        if not raced:  # worker 1's first commit attempt: worker 0 widens the table right before it
            raced.append(dt.version())
            first.write(V2.slice(0, 20))
            first.prepare(2)
        real(dt, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DeltaTable, "create_write_transaction", widened_meanwhile)
    second.write(V1.slice(30))
    second.prepare(1)
    monkeypatch.undo()
    first.write(V2.slice(20))
    first.prepare(3)
    assert raced and version(uri) > raced[0] + 3  # worker 0's rewrite and append, then worker 1's retry
    assert referenced_score_types(uri) == {pa.int64()}
    assert_values_preserved(read(uri))


@pytest.mark.parametrize("sink_class", [DeltaBatchSink, DeltaTwoPhaseSink])
def test_two_workers_carry_the_change_concurrently_into_one_table(tmp_path: Path, sink_class: type) -> None:
    """Both workers create the table at once (one creation stands: no second metadata action) and
    both meet the change; whoever widens, every value survives and no narrow file is referenced."""
    uri = tmp_path / "out"
    start, errors = threading.Barrier(2), []

    def run(worker: int) -> None:
        try:
            sink = sink_class(str(uri), "job", worker, Crash(), max_file_rows=15)
            start.wait(timeout=10)
            parts = [t.slice(i, 10) for t in (V1, V2) for i in range(worker * 10, t.num_rows, 20)]
            for checkpoint, part in enumerate(parts, start=1):
                sink.write(part)
                sink.commit(sink.prepare(checkpoint))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(w,)) for w in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    creations = [v for v in range(version(uri) + 1) if any("protocol" in a for a in commit_actions(uri, v))]
    assert creations == [0]
    assert referenced_score_types(uri) == {pa.int64()}
    assert_values_preserved(read(uri))


# -- per-file disk faults on the batch sink (certification scenario 3) ------------------------------
def test_batch_sink_disk_fault_on_any_one_file_fails_the_append_with_nothing_visible_or_left(
        tmp_path: Path) -> None:
    """Checkpoint 1 commits; an EIO then strikes each checked operation of checkpoint 2's append in
    turn: two data files (write, fsync, rename, directory fsync each), then the log commit. The
    append fails, the table is as it was, not a file more (the first file is deleted when the
    second fails), and after the heal a restarted sink replays checkpoint 2 once."""
    struck: list[str] = []
    for k in range(1, 10):
        uri, ctl = tmp_path / f"out-{k}", tmp_path / f"ctl-{k}.json"
        sink = DeltaBatchSink(str(uri), "job", 0, Crash(), max_file_rows=20)
        sink.write(V1.slice(0, 20))
        sink.prepare(1)
        before, v = all_files(uri), version(uri)
        disk = sink.disk = FailAt(ctl, fail_at=k)
        sink.write(V1.slice(20, 40))  # two files of 20
        with pytest.raises(OSError) as raised:
            sink.prepare(2)
        assert raised.value.errno == errno.EIO and len(disk.ops) == k
        assert all_files(uri) == before and version(uri) == v, f"op {k} ({disk.ops[-1]}) left something"
        assert_exactly_once(visible_ids(uri), range(20))
        struck.append(disk.ops[-1])

        assert disk.heal is not None
        disk.heal()  # the worker died of the OSError; its restart replays checkpoint 2
        restarted = DeltaBatchSink(str(uri), "job", 0, Crash(), max_file_rows=20, disk=DiskFaults(ctl))
        restarted.recover([])
        restarted.write(V1.slice(20, 40))
        restarted.prepare(2)
        assert_exactly_once(visible_ids(uri), range(60))
    assert struck == ["write", "fsync", "rename", "fsync_dir"] * 2 + ["write"]


def test_batch_sink_disk_fault_during_a_widening_leaves_the_table_narrow_and_whole(tmp_path: Path) -> None:
    """The rewrite that widens the table writes its files through the same hook: a fault on any of
    them (or on its log commit) fails the append before anything changed, and the replay widens."""
    for k in (1, 5, 8, 9):  # the first file's write, the second's write and directory fsync, the log commit
        uri, ctl = tmp_path / f"out-{k}", tmp_path / f"ctl-{k}.json"
        sink = DeltaBatchSink(str(uri), "job", 0, Crash(), max_file_rows=30)
        sink.write(V1)
        sink.prepare(1)  # two files of 30
        before, v = all_files(uri), version(uri)
        disk = sink.disk = FailAt(ctl, fail_at=k)
        sink.write(V2)
        with pytest.raises(OSError):
            sink.prepare(2)
        assert all_files(uri) == before and version(uri) == v and referenced_score_types(uri) == {pa.int32()}
        assert disk.heal is not None
        disk.heal()
        restarted = DeltaBatchSink(str(uri), "job", 0, Crash(), disk=DiskFaults(ctl))
        restarted.recover([])
        restarted.write(V2)
        restarted.prepare(2)
        assert_values_preserved(read(uri))


# -- the two-phase sink ----------------------------------------------------------------------------
def two_phase(uri: Path, worker: int = 0, crash: Crash | None = None) -> DeltaTwoPhaseSink:
    return DeltaTwoPhaseSink(str(uri), "job", worker, crash or Crash(), max_file_rows=20)


def test_two_phase_sink_widens_at_commit_keeps_every_value_and_each_unit_whole(tmp_path: Path) -> None:
    """The checkpoint of the change commits in two steps (the rewrite, then its rows); a crash in
    between is recovered from the persisted handle. The rewrite is no checkpoint's unit and changes
    no row a reader sees; each checkpoint's rows arrive in one commit."""
    uri = tmp_path / "out"
    sink = two_phase(uri)
    sink.write(V1.slice(0, 30))
    sink.commit(sink.prepare(1))
    sink.write(V1.slice(30))
    sink.write(V2.slice(0, 10))  # the change mid-checkpoint: files of both schemas in one handle
    handle = sink.prepare(2)
    sink.crash = Crash(fire_on="sink.commit.mid")
    with pytest.raises(SimulatedCrash):
        sink.commit(handle)
    assert referenced_score_types(uri) == {pa.int64()}  # widened, its rows not yet in
    assert_exactly_once(visible_ids(uri), range(30))
    restarted = two_phase(uri)
    restarted.recover([handle])
    assert restarted.orphans_removed == 0
    restarted.write(V2.slice(10))
    restarted.commit(restarted.prepare(3))
    assert_values_preserved(read(uri))
    assert referenced_score_types(uri) == {pa.int64()}
    assert_one_widening_commit(uri)
    units = delta_committed_units(str(uri))
    by_unit = {u: sorted(units.filter(pc.equal(units["checkpoint_id"], u))["id"].to_pylist())
               for u in set(units["checkpoint_id"].to_pylist())}
    assert by_unit == {1000: list(range(30)), 2000: list(range(30, 70)), 3000: list(range(70, ROWS))}


def test_two_phase_staged_files_narrower_than_a_table_widened_since_prepare(tmp_path: Path) -> None:
    """Worker 1 staged int32 files; worker 0 widens the table before worker 1 commits. Worker 1's
    files are rewritten in place under int64 (a retry after a crash there accepts them), while a
    staged file changed any other way is refused."""
    uri = tmp_path / "out"
    zero, one = two_phase(uri, 0), two_phase(uri, 1)
    zero.write(V1.slice(0, 30))
    zero.commit(zero.prepare(1))
    one.write(V1.slice(30))
    staged = one.prepare(1)
    zero.write(V2.slice(0, 20))
    zero.commit(zero.prepare(2))  # the widening
    sizes = {add["path"]: (uri / add["path"]).stat().st_size for add in staged.payload["adds"]}

    class CrashBeforeTheDataCommit(DeltaTwoPhaseSink):
        def _add_files(self, dt, handle, adds):  # type: ignore[no-untyped-def]
            raise SimulatedCrash("after the rewrite in place, before the data commit")

    with pytest.raises(SimulatedCrash):
        CrashBeforeTheDataCommit(str(uri), "job", 1, Crash(), max_file_rows=20).commit(staged)
    assert all((uri / name).stat().st_size != size for name, size in sizes.items())  # rewritten in place
    assert all(pq.read_schema(uri / name).field("score").type == pa.int64() for name in sizes)
    assert sorted(visible_ids(uri)) == list(range(30)) + list(range(CHANGE, CHANGE + 20))  # worker 0's only

    tampered = two_phase(tmp_path / "other", 1)
    tampered.write(V1.slice(30))
    bad = tampered.prepare(1)
    pq.write_table(V1.slice(0, 5), tmp_path / "other" / bad.payload["files"][0])
    with pytest.raises(CommitError, match="changed since prepare"):
        tampered.commit(bad)

    two_phase(uri, 1).recover([staged])
    zero.write(V2.slice(20))
    zero.commit(zero.prepare(3))
    assert referenced_score_types(uri) == {pa.int64()}
    assert_values_preserved(read(uri))


# -- the source ------------------------------------------------------------------------------------
def drain(source: DeltaBatchSource) -> pa.Table:
    tables = []
    while not source.exhausted():
        tables.append(source.poll(1000, 0.1))
    return pa.concat_tables(tables)


def read_with_source(uri: Path, workers: int, history: History | None) -> pa.Table:
    tables = []
    for worker in range(workers):
        source = DeltaBatchSource(str(uri), Crash(), SchemaWatch(history, worker, "source files"))
        source.open(worker, workers, None)
        tables.append(drain(source))
        source.close()
    return pa.concat_tables(tables)


def test_source_reads_the_harness_input_table_widened_mid_stream(tmp_path: Path) -> None:
    """The input table as the harness writes it for a run with a schema change: the version-1 rows
    rewritten under int64 in one commit (files without `region`), then the version-2 parts. Two
    workers read every value under the final schema, and a worker says the files' schema changed.
    A restore pinned before the widening still reads that narrow snapshot."""
    side = DeltaSourceSide(SimpleNamespace(run_dir=tmp_path, lake=tmp_path / "lake"))  # type: ignore[arg-type]
    uri = Path(side.table)
    side.write_input([V1.slice(i, 20) for i in range(0, CHANGE, 20)] + [V2.slice(i, 10) for i in range(0, 40, 10)])
    assert_values_preserved(read(uri))
    assert referenced_score_types(uri) == {pa.int64()}
    widened = next(v for v in range(version(uri) + 1)
                   if pa.schema(DeltaTable(str(uri), version=v).schema().to_arrow()).field("score").type == pa.int64())
    assert widened == assert_one_widening_commit(uri, marked=False)
    history = History(tmp_path / "history.jsonl", source="worker")
    table = read_with_source(uri, 2, history)
    history.close()
    assert_values_preserved(table)
    seen = [e for e in read_history(tmp_path / "history.jsonl") if e["event"] == Event.SCHEMA_CHANGE_SEEN]
    assert {e["worker"] for e in seen} == {0, 1}  # the files are shared out in stream order
    assert all("region" in e["added"] + e["dropped"] for e in seen)

    narrow = DeltaBatchSource(str(uri), Crash())
    narrow.open(0, 1, {"version": widened - 1, "files": {}})
    rows = drain(narrow)
    assert rows.schema.field("score").type == pa.int32() and sorted(rows["id"].to_pylist()) == list(range(CHANGE))


def test_source_reads_a_table_the_batch_sink_widened(tmp_path: Path) -> None:
    """The sink's files keep the columns their rows had (no `tag` after the change, no `region`
    before it); the source reads them all under the widened schema with every value intact."""
    uri = tmp_path / "out"
    sink = DeltaBatchSink(str(uri), "job", 0, Crash())
    sink.write(V1)
    sink.prepare(1)
    sink.write(V2)
    sink.prepare(2)
    names = [set(pq.read_schema(f).names) for f in DeltaTable(str(uri)).file_uris()]
    assert {"tag", "region"} not in [n & {"tag", "region"} for n in names]  # no file has both
    history = History(tmp_path / "history.jsonl", source="worker-0")
    table = read_with_source(uri, 1, history)
    history.close()
    assert table.schema.equals(pa.schema(DeltaTable(str(uri)).schema().to_arrow()))
    assert_values_preserved(table)
    [seen] = [e for e in read_history(tmp_path / "history.jsonl") if e["event"] == Event.SCHEMA_CHANGE_SEEN]
    assert sorted(seen["added"] + seen["dropped"]) == ["region", "tag"]
