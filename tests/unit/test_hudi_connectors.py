"""Hudi two-phase sink and batch source, on real tables read back with hudi-rs (the `hudi` package).

Every check of what is visible goes through the official reader, never through the driver. Crashes
are simulated by a hook that raises at one named point; the instance that "crashed" is abandoned
and a new one recovers, as a restarted worker would.
"""

from __future__ import annotations

import errno
import json
from collections import Counter
from pathlib import Path

import hudi  # the official reader (hudi-rs): `pip install 'hudi>=0.5'`
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import SCHEMA, expected_table
from drivers.sdk.contracts import CommitHandle
from drivers.sdk.diskfaults import DiskFaults
from drivers.hudi.sink import HudiTwoPhaseSink
from drivers.hudi.source import HudiBatchSource
from drivers.mutants import LeakyRollbackHudiSink
from drivers.parquet_sinks import CommitError
from tests.unit.test_disk_faults import FailAt
from tests.unit.crashes import Crash, SimulatedCrash

ROWS = 60
TABLE = expected_table(WorkloadSpec(records=ROWS, rate=50, keys=5, payload_size=16), seed=7)
FIRST, SECOND = TABLE.slice(0, 30), TABLE.slice(30, 30)
META = ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key", "_hoodie_partition_path",
        "_hoodie_file_name")


# -- the independent reader ----------------------------------------------------------------------

def hudi_table(path: Path) -> hudi.HudiTable:
    return hudi.HudiTableBuilder.from_base_uri(str(path)).build()


def read_rows(path: Path) -> pa.Table:
    """What hudi-rs shows of the latest snapshot, without the meta columns."""
    if not (path / ".hoodie" / "hoodie.properties").exists():
        return SCHEMA.empty_table()
    batches = hudi_table(path).read()
    if not batches:
        return SCHEMA.empty_table()
    table = pa.Table.from_batches(batches)
    return table.drop_columns([c for c in table.column_names if c in META])


def visible_ids(path: Path) -> list[int]:
    return read_rows(path).column("id").to_pylist()


def assert_exactly_once(ids: list[int], expected: range = range(ROWS)) -> None:
    dups = {i: n for i, n in Counter(ids).items() if n > 1}
    assert not dups, f"duplicates: {dups}"
    assert sorted(ids) == list(expected), f"missing: {sorted(set(expected) - set(ids))}, " \
                                          f"extra: {sorted(set(ids) - set(expected))}"


def committed_files(path: Path) -> set[str]:
    """Base files of the latest snapshot, as hudi-rs lists them."""
    if not (path / ".hoodie" / "hoodie.properties").exists():
        return set()
    return {s.base_file_name for s in hudi_table(path).get_file_slices()}


def leftovers(path: Path) -> dict[str, list[str]]:
    """Orphans: base files no snapshot references, pending instants, markers and staging files."""
    parquet = sorted(p.name for p in path.iterdir() if p.name.endswith(".parquet")) if path.exists() else []
    meta = path / ".hoodie"
    names = sorted(p.name for p in meta.iterdir()) if meta.exists() else []
    temp = meta / ".temp"
    return {
        "unreferenced": sorted(set(parquet) - committed_files(path)),
        "pending": [n for n in names if n.endswith((".requested", ".inflight"))],
        "markers": sorted(p.name for p in temp.iterdir()) if temp.exists() else [],
        "staging": [p.name for p in path.rglob("*") if p.name.endswith((".inprogress", ".tmp"))],
    }


NO_LEFTOVERS = {"unreferenced": [], "pending": [], "markers": [], "staging": []}


def sink(path: Path, crash: Crash | None = None, worker: int = 0, **kw: object) -> HudiTwoPhaseSink:
    return HudiTwoPhaseSink(path, "job-1", worker, crash or Crash(), **kw)  # type: ignore[arg-type]


# -- the sink ------------------------------------------------------------------------------------

def test_committed_table_reads_back_exactly(tmp_path: Path) -> None:
    s = sink(tmp_path / "t")
    s.write(FIRST)
    s.write(SECOND)
    handle = s.prepare(1)
    s.commit(handle)

    got = read_rows(tmp_path / "t").sort_by("id")
    assert got.select(SCHEMA.names).cast(SCHEMA).equals(TABLE)
    table = hudi_table(tmp_path / "t")
    assert table.table_type == "COPY_ON_WRITE"
    timeline = table.get_timeline()
    (instant,) = timeline.get_completed_commits()
    assert instant.timestamp == handle.payload["instant"] and len(instant.timestamp) == 17
    metadata = json.loads(timeline.get_instant_metadata_in_json(instant))
    assert metadata["operationType"] == "INSERT"
    assert metadata["extraMetadata"]["chaos.job-id"] == "job-1"
    assert metadata["extraMetadata"]["chaos.worker"] == "0"
    assert metadata["extraMetadata"]["chaos.checkpoint-id"] == "1"
    assert [f["name"] for f in json.loads(metadata["extraMetadata"]["schema"])["fields"]] == SCHEMA.names
    (stat,) = metadata["partitionToWriteStats"][""]
    assert stat["numWrites"] == ROWS and stat["path"] == handle.payload["files"][0]
    assert leftovers(tmp_path / "t") == NO_LEFTOVERS


def test_meta_columns_come_first_and_name_the_file(tmp_path: Path) -> None:
    s = sink(tmp_path / "t")
    s.write(FIRST)
    handle = s.prepare(1)
    s.commit(handle)
    batch = pa.Table.from_batches(hudi_table(tmp_path / "t").read())
    assert batch.column_names[:5] == list(META)
    assert set(batch.column("_hoodie_commit_time").to_pylist()) == {handle.payload["instant"]}
    assert set(batch.column("_hoodie_file_name").to_pylist()) == set(handle.payload["files"])
    assert batch.column("_hoodie_record_key").to_pylist() == [str(i) for i in batch.column("id").to_pylist()]


def test_nothing_is_visible_before_commit(tmp_path: Path) -> None:
    path = tmp_path / "t"
    s = sink(path)
    s.write(FIRST)
    h1 = s.prepare(1)
    assert visible_ids(path) == []
    s.commit(h1)
    s.write(SECOND)
    h2 = s.prepare(2)
    assert_exactly_once(visible_ids(path), range(30))
    s.commit(h2)
    assert_exactly_once(visible_ids(path))


def test_commit_twice_gives_no_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "t"
    s = sink(path, max_file_rows=20)
    s.write(TABLE)
    handle = s.prepare(1)
    s.commit(handle)
    s.commit(handle)
    sink(path).commit(handle)  # a restarted worker re-commits the same checkpoint
    assert_exactly_once(visible_ids(path))
    assert len(hudi_table(path).get_timeline().get_completed_commits()) == 1


@pytest.mark.parametrize("point", ["sink.prepare.before", "sink.write.mid", "sink.prepare.after"])
def test_crash_while_preparing_then_recover_is_exactly_once(tmp_path: Path, point: str) -> None:
    """The checkpoint never got its handle, so the restored checkpoint is the previous one: the
    crashed instant is rolled back and the source's rewind writes the rows again."""
    path = tmp_path / "t"
    first = sink(path, Crash(point, hit=2), max_file_rows=10)
    first.write(FIRST)
    h1 = first.prepare(1)
    first.commit(h1)
    first.write(SECOND)
    with pytest.raises(SimulatedCrash):
        first.prepare(2)
    assert_exactly_once(visible_ids(path), range(30))

    second = sink(path, max_file_rows=10)
    second.recover([h1])
    assert second.orphans_removed == (0 if point == "sink.prepare.before" else 1)
    assert_exactly_once(visible_ids(path), range(30))
    assert leftovers(path) == NO_LEFTOVERS
    second.write(SECOND)
    second.commit(second.prepare(2))
    assert_exactly_once(visible_ids(path))
    assert leftovers(path) == NO_LEFTOVERS


@pytest.mark.parametrize("point", ["sink.commit.before", "sink.commit.after"])
def test_crash_while_committing_then_recover_is_exactly_once(tmp_path: Path, point: str) -> None:
    """The checkpoint holding the handle was persisted: recovery must commit it, not roll it back
    (hudi #18051), whether or not the first attempt landed."""
    path = tmp_path / "t"
    first = sink(path, Crash(point, hit=2))
    first.write(FIRST)
    h1 = first.prepare(1)
    first.commit(h1)
    first.write(SECOND)
    h2 = first.prepare(2)
    with pytest.raises(SimulatedCrash):
        first.commit(h2)
    before = visible_ids(path)
    assert_exactly_once(before, range(30) if point == "sink.commit.before" else range(ROWS))

    second = sink(path)
    second.recover([h1, h2])  # earlier handles ride along; re-committing them is a no-op
    assert second.orphans_removed == 0
    assert_exactly_once(visible_ids(path))
    assert leftovers(path) == NO_LEFTOVERS


def test_recover_with_nothing_committed_rolls_prepared_instants_back(tmp_path: Path) -> None:
    path = tmp_path / "t"
    first = sink(path, max_file_rows=10)
    first.write(FIRST)
    h1 = first.prepare(1)
    first.write(SECOND)
    first.prepare(2)
    assert len(list(path.glob("*.parquet"))) == 6

    second = sink(path)
    second.recover([])
    assert second.orphans_removed == 2
    assert visible_ids(path) == []
    assert list(path.glob("*.parquet")) == []
    assert leftovers(path) == NO_LEFTOVERS
    with pytest.raises(CommitError, match="rolled back"):
        second.commit(h1)  # the checkpoint was never persisted; it must not come back silently


def test_recover_leaves_other_jobs_and_workers_alone(tmp_path: Path) -> None:
    path = tmp_path / "t"
    w0 = sink(path, worker=0)
    w0.write(FIRST)
    h0 = w0.prepare(1)
    other_job = HudiTwoPhaseSink(path, "job-2", 1, Crash())
    other_job.write(SECOND.slice(0, 10))
    h_other = other_job.prepare(1)
    w1 = sink(path, worker=1)
    w1.recover([])
    assert w1.orphans_removed == 0
    w1.write(SECOND.slice(10))
    w1.commit(w1.prepare(1))
    w0.commit(h0)
    other_job.commit(h_other)
    assert_exactly_once(visible_ids(path))


def test_a_failed_inflight_is_rolled_back_before_the_next_commit(tmp_path: Path) -> None:
    path = tmp_path / "t"
    crashed = sink(path, max_file_rows=10)
    crashed.write(FIRST)
    failed = crashed.prepare(1)  # the worker dies here; nobody recovers it
    restarted = sink(path)
    restarted.write(SECOND)
    restarted.commit(restarted.prepare(1))
    assert restarted.rolled_back == [failed.payload["instant"]]
    assert_exactly_once(visible_ids(path), range(30, ROWS))
    assert leftovers(path) == NO_LEFTOVERS


def test_an_interrupted_rollback_never_exposes_rows_and_is_finished_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Data files go first, timeline entries last: a crash between the two leaves a pending instant
    with no files, which hudi-rs hides, and the next recovery finishes the rollback."""
    path = tmp_path / "t"
    crashed = sink(path, worker=0)
    crashed.write(FIRST)
    crashed.prepare(1)  # the earliest instant on the timeline, never committed
    other = sink(path, worker=1)
    other.write(SECOND)
    other.commit(other.prepare(1))

    def crash_before_timeline(self: HudiTwoPhaseSink, instant: str) -> None:
        raise SimulatedCrash("rollback.mid")

    monkeypatch.setattr(HudiTwoPhaseSink, "_delete_timeline_entries", crash_before_timeline)
    with pytest.raises(SimulatedCrash):
        sink(path, worker=0).recover([])
    assert_exactly_once(visible_ids(path), range(30, ROWS))
    monkeypatch.undo()

    again = sink(path, worker=0)
    again.recover([])
    assert again.orphans_removed == 1
    assert_exactly_once(visible_ids(path), range(30, ROWS))
    assert leftovers(path) == NO_LEFTOVERS


def test_prepare_keeps_instants_whose_handles_are_still_pending(tmp_path: Path) -> None:
    path = tmp_path / "t"
    s = sink(path)
    s.write(FIRST)
    h1 = s.prepare(1)
    s.write(SECOND)
    h2 = s.prepare(2)  # checkpoint 1 is not committed yet: its handle rides along
    assert s.rolled_back == []
    s.commit(h1)
    s.commit(h2)
    assert_exactly_once(visible_ids(path))
    assert h1.payload["instant"] < h2.payload["instant"]


def test_a_leaky_rollback_makes_uncommitted_rows_visible(tmp_path: Path) -> None:
    """The seeded bug drops a failed instant from the timeline but keeps its base files. Its rows
    were never committed, yet hudi-rs shows them: a file older than the first instant left on the
    timeline counts as an archived commit. The exactly-once check must fail here."""
    path = tmp_path / "t"
    crashed = sink(path)
    crashed.write(FIRST)
    crashed.prepare(1)
    assert visible_ids(path) == []
    leaky = LeakyRollbackHudiSink(path, "job-1", 0, Crash())
    leaky.write(SECOND)
    leaky.commit(leaky.prepare(1))
    ids = visible_ids(path)
    assert set(range(30)) <= set(ids), "hudi-rs should show the rows of the failed instant"
    with pytest.raises(AssertionError, match="extra"):
        assert_exactly_once(ids, range(30, ROWS))


def test_skipping_the_rollback_leaves_orphans_that_hudi_rs_hides(tmp_path: Path) -> None:
    """Without any rollback the failed instant stays pending on the timeline, and hudi-rs 0.5 hides
    its files; what the bug breaks then is the no-orphans invariant, which this check catches."""

    class SkipsRollback(HudiTwoPhaseSink):
        def _rollback_failed_instants(self, keep: set[str]) -> list[str]:
            return []

    path = tmp_path / "t"
    crashed = sink(path)
    crashed.write(FIRST)
    crashed.prepare(1)
    buggy = SkipsRollback(path, "job-1", 0, Crash())
    buggy.write(SECOND)
    buggy.commit(buggy.prepare(1))
    assert_exactly_once(visible_ids(path), range(30, ROWS))
    found = leftovers(path)
    assert found["unreferenced"] and found["pending"] and found["markers"]


def test_abort_rolls_back_and_a_committed_instant_cannot_be_aborted(tmp_path: Path) -> None:
    path = tmp_path / "t"
    s = sink(path)
    s.write(FIRST)
    h1 = s.prepare(1)
    s.abort(h1)
    assert visible_ids(path) == []
    assert leftovers(path) == NO_LEFTOVERS
    s.write(SECOND)
    h2 = s.prepare(2)
    s.commit(h2)
    with pytest.raises(CommitError, match="cannot be aborted"):
        s.abort(h2)
    assert_exactly_once(visible_ids(path), range(30, ROWS))


def test_a_failed_write_is_retried_without_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import drivers.hudi.sink as module

    real = module.pq.write_table
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(5, "Input/output error")
        real(*args, **kwargs)  # type: ignore[arg-type]

    path = tmp_path / "t"
    s = sink(path, max_file_rows=20)
    s.write(TABLE)
    monkeypatch.setattr(module.pq, "write_table", flaky)
    with pytest.raises(OSError):
        s.prepare(1)
    assert visible_ids(path) == []
    handle = s.prepare(1)  # the retry rolls the failed instant back and writes the rows again
    s.commit(handle)
    assert len(s.rolled_back) == 1
    assert_exactly_once(visible_ids(path))
    assert leftovers(path) == NO_LEFTOVERS


# Checkpoint 2's prepare with max_file_rows=20 over 40 rows: the marker directory's fsync, then for
# each of its two base files the marker's fsync, the marker directory's fsync, then the base file's
# write, fsync, rename and the table directory's fsync.
PREPARE_OPS = ["fsync_dir"] + ["fsync", "fsync_dir", "write", "fsync", "rename", "fsync_dir"] * 2


@pytest.mark.parametrize("retry", ["same-sink", "restarted"])
def test_a_disk_fault_at_every_prepare_step_shows_nothing_and_the_retry_is_exactly_once(
        tmp_path: Path, retry: str) -> None:
    """Certification scenario 3 on the Hudi sink: checkpoint 1 commits, then an EIO strikes each
    checked operation of checkpoint 2's prepare in turn. hudi-rs sees checkpoint 1 only; after the
    heal, the same sink retries the prepare (its rows are still buffered) or a restarted one
    recovers from checkpoint 1 and gets the rows replayed, and every row lands exactly once."""
    for k in range(1, len(PREPARE_OPS) + 1):
        path, ctl = tmp_path / f"t-{retry}-{k}", tmp_path / f"ctl-{retry}-{k}.json"
        s = sink(path, max_file_rows=20)
        s.write(TABLE.slice(0, 20))
        first = s.prepare(1)
        s.commit(first)
        disk = s.disk = FailAt(ctl, fail_at=k)
        s.write(TABLE.slice(20, 40))
        with pytest.raises(OSError) as raised:
            s.prepare(2)
        where = f"op {k} ({disk.ops[-1]})"
        assert raised.value.errno == errno.EIO and disk.ops == PREPARE_OPS[:k], where
        assert_exactly_once(visible_ids(path), range(20))

        assert disk.heal is not None
        disk.heal()
        if retry == "restarted":
            s = sink(path, max_file_rows=20, disk=DiskFaults(ctl))
            s.recover([first])
            s.write(TABLE.slice(20, 40))
        s.commit(s.prepare(2))
        assert len(s.rolled_back) == 1, where
        assert_exactly_once(visible_ids(path))
        assert leftovers(path) == NO_LEFTOVERS, where


def test_empty_checkpoint_prepares_and_commits_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t"
    s = sink(path)
    handle = s.prepare(1)
    s.commit(handle)
    assert handle.payload["instant"] is None
    assert visible_ids(path) == []


def test_schema_evolution_records_the_evolved_schema(tmp_path: Path) -> None:
    path = tmp_path / "t"
    s = sink(path)
    s.write(TABLE.slice(0, 20))
    s.commit(s.prepare(1))
    evolved = TABLE.slice(20, 20).append_column(
        pa.field("region", pa.string(), nullable=True), pa.array([f"r{i % 3}" for i in range(20)]))
    s.write(evolved)
    s.commit(s.prepare(2))
    s.write(TABLE.slice(40, 20))  # the column is absent again: the table schema keeps it
    s.commit(s.prepare(3))
    widened = pa.table({"id": pa.array([100, 101], pa.int64()), "small": pa.array([1, 2], pa.int32())})
    s.write(widened)
    s.commit(s.prepare(4))
    s.write(pa.table({"id": pa.array([102], pa.int64()), "small": pa.array([2**40], pa.int64())}))
    s.commit(s.prepare(5))

    table = hudi_table(path)
    assert "region" in table.get_schema().names
    fields = [f["name"] for f in json.loads(table.get_timeline().get_latest_avro_schema())["fields"]]
    assert fields == SCHEMA.names + ["region", "small"]
    assert table.get_schema().field("small").type == pa.int64()  # int widened to long
    rows = read_rows(path).sort_by("id")
    small = rows.filter(pc.greater_equal(rows.column("id"), 100))
    assert small.column("small").to_pylist() == [1, 2, 2**40]
    rows = rows.filter(pc.less(rows.column("id"), 100))
    assert_exactly_once(rows.column("id").to_pylist())
    region = rows.column("region").to_pylist()
    assert region[:20] == [None] * 20 and region[40:] == [None] * 20
    assert region[20:40] == [f"r{i % 3}" for i in range(20)]
    assert rows.select(SCHEMA.names).cast(SCHEMA).equals(TABLE)


def test_handles_survive_a_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t"
    s = sink(path)
    s.write(FIRST)
    handle = s.prepare(1)
    restored = CommitHandle.model_validate(json.loads(json.dumps(handle.model_dump(mode="json"))))
    sink(path).recover([restored])
    assert_exactly_once(visible_ids(path), range(30))


# -- the source ----------------------------------------------------------------------------------

def build_table(path: Path, parts: int = 3, rows_per_file: int = 10) -> None:
    s = sink(path, max_file_rows=rows_per_file)
    step = ROWS // parts
    for n in range(parts):
        s.write(TABLE.slice(n * step, step))
        s.commit(s.prepare(n + 1))


def drain(source: HudiBatchSource, max_records: int = 7) -> list[int]:
    ids: list[int] = []
    while not source.exhausted():
        batch = source.poll(max_records, 0.0)
        assert not any(c.startswith("_hoodie") for c in batch.column_names)
        ids.extend(batch.column("id").to_pylist())
    return ids


def test_batch_source_splits_file_slices_between_workers(tmp_path: Path) -> None:
    path = tmp_path / "t"
    build_table(path)
    shares = []
    for worker in range(2):
        source = HudiBatchSource(path, Crash())
        source.open(worker, 2, None)
        shares.append(drain(source))
    assert shares[0] and shares[1]
    assert not set(shares[0]) & set(shares[1])
    assert_exactly_once(shares[0] + shares[1])


def test_batch_source_restores_from_positions_on_the_same_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "t"
    build_table(path, parts=2)
    whole = HudiBatchSource(path, Crash())
    whole.open(0, 2, None)
    share = drain(whole)

    first = HudiBatchSource(path, Crash())
    first.open(0, 2, None)
    seen = first.poll(7, 0.0).column("id").to_pylist() + first.poll(7, 0.0).column("id").to_pylist()
    positions = json.loads(json.dumps(first.snapshot_positions()))
    first.close()

    more = sink(path, worker=1)  # the table moves on; the restored source keeps its snapshot
    more.write(TABLE.slice(0, 5).set_column(0, "id", pa.array(range(1000, 1005), pa.int64())))
    more.commit(more.prepare(9))

    restored = HudiBatchSource(path, Crash())
    restored.open(0, 2, positions)
    assert restored.instant == positions["instant"]
    rest = drain(restored)
    assert seen + rest == share
    fresh = HudiBatchSource(path, Crash())
    fresh.open(0, 1, None)
    assert sorted(drain(fresh)) == list(range(ROWS)) + list(range(1000, 1005))


def test_batch_source_crash_points_and_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "t"
    crash = Crash()
    empty = HudiBatchSource(path, crash)
    s = sink(path)
    s.write(FIRST)
    s.prepare(1)  # pending only: there is no completed commit to read
    empty.open(0, 1, None)
    assert empty.exhausted() and empty.poll(10, 0.0).num_rows == 0
    assert crash.points == []

    build_table(tmp_path / "u", parts=1, rows_per_file=ROWS)
    source = HudiBatchSource(tmp_path / "u", crash)
    source.open(0, 1, None)
    drain(source, max_records=ROWS)
    assert crash.points == ["source.poll.after"]
    source.poll(10, 0.0)
    assert crash.points == ["source.poll.after"]
    source.ack(source.snapshot_positions())
    assert crash.points == ["source.poll.after", "source.ack.before"]
