"""Iceberg batch source, batch sink and two-phase sink, on a real SQLite catalog in tmp_path.

Everything is verified through pyiceberg itself (a catalog of our own on the same database:
`load_table(...).scan().to_arrow()`, snapshots and their summaries), never through the driver.
Crashes are simulated by a hook that raises at one named point; the instance that "crashed" is then
abandoned and a new one recovers, as a restarted worker would.
"""

from __future__ import annotations

import errno
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.table import Table

from chaos.experiment.models import WorkloadSpec
from drivers.iceberg.catalog import MAX_COMMITTED_PROP, catalog_url
from drivers.iceberg.sinks import IcebergBatchSink, IcebergTwoPhaseSink
from drivers.iceberg.source import IcebergBatchSource
from drivers.sdk.contracts import CommitError, CommitHandle
from drivers.sdk.diskfaults import DiskFaults
from drivers.sdk.records import SCHEMA, expected_table
from tests.unit.crashes import Crash, SimulatedCrash
from tests.unit.test_disk_faults import FailAt

ROWS = 100
DATA = expected_table(WorkloadSpec(records=ROWS, rate=50, keys=5, payload_size=16), seed=3)
JOB = "job1"


# -- the independent reader -----------------------------------------------------------------------
@pytest.fixture
def wh(tmp_path: Path) -> Path:
    d = tmp_path / "warehouse"
    d.mkdir()
    return d


def uri(wh: Path) -> str:
    return f"sqlite:///{wh / 'catalog.db'}"


def reader(wh: Path) -> SqlCatalog:
    # The name matters: SqlCatalog keys its rows by catalog name, so a reader must also say "chaos".
    return SqlCatalog("chaos", uri=uri(wh), warehouse=wh.as_uri())


def load(wh: Path, name: str = "out") -> Table | None:
    try:
        return reader(wh).load_table(f"chaos.{name}")
    except NoSuchTableError:
        return None


def visible_ids(wh: Path, name: str = "out") -> list[int]:
    table = load(wh, name)
    if table is None:
        return []
    return table.scan().to_arrow().column("id").to_pylist()


def snapshots(wh: Path, name: str = "out") -> list[dict[str, str]]:
    table = load(wh, name)
    if table is None:
        return []
    return [dict(s.summary.additional_properties) for s in table.snapshots() if s.summary is not None]


def assert_exactly_once(ids: list[int], expected: range = range(ROWS)) -> None:
    dups = {i: n for i, n in Counter(ids).items() if n > 1}
    assert not dups, f"duplicates: {dups}"
    assert sorted(ids) == list(expected), f"missing: {sorted(set(expected) - set(ids))}"


def staged_files(wh: Path, name: str = "out") -> list[str]:
    data = wh / "chaos" / name / "data"
    return sorted(p.name for p in data.iterdir() if p.name.startswith(("chaos-", ".chaos-"))) \
        if data.is_dir() else []


def two_phase(wh: Path, crash: Crash | None = None, worker: int = 0, cls: type = IcebergTwoPhaseSink,
              **kw: object) -> IcebergTwoPhaseSink:
    return cls(uri(wh), wh, "out", JOB, worker, crash or Crash(), **kw)


# -- catalog --------------------------------------------------------------------------------------
def test_catalog_url_defaults_to_sqlite_and_adds_postgres_timeouts(tmp_path: Path) -> None:
    assert catalog_url("", tmp_path) == f"sqlite:///{tmp_path.resolve()}/catalog.db"
    pg = catalog_url("postgresql+psycopg://chaos@127.0.0.1:5433/chaos", tmp_path)
    assert pg.startswith("postgresql+psycopg://chaos@127.0.0.1:5433/chaos?")
    assert "connect_timeout=5" in pg and "tcp_user_timeout=" in pg
    assert "connect_timeout=2" in catalog_url("postgresql://chaos@127.0.0.1:5433/chaos?connect_timeout=2", tmp_path)


def test_embedded_default_catalog_is_in_the_warehouse(wh: Path) -> None:
    sink = IcebergBatchSink("", wh, "out", JOB, 0, Crash())
    sink.write(DATA)
    sink.prepare(1)
    sink.close()
    assert (wh / "catalog.db").exists()
    assert_exactly_once(visible_ids(wh))


# -- batch source ---------------------------------------------------------------------------------
@pytest.fixture
def source_table(wh: Path) -> Table:
    """5 data files of 20 rows in row groups of 7 (7 + 7 + 6), added in one snapshot."""
    catalog = reader(wh)
    catalog.create_namespace_if_not_exists("chaos")
    table = catalog.create_table("chaos.src", schema=SCHEMA)
    data_dir = wh / "chaos" / "src" / "data"
    data_dir.mkdir(parents=True)
    paths = []
    for f in range(5):
        path = data_dir / f"in-{f}.parquet"
        pq.write_table(DATA.slice(f * 20, 20), path, row_group_size=7)
        paths.append(path.as_uri())
    table.add_files(paths)
    return table


def new_source(wh: Path, crash: Crash | None = None) -> IcebergBatchSource:
    return IcebergBatchSource(uri(wh), wh, "src", crash or Crash())


def drain(source: IcebergBatchSource) -> list[pa.Table]:
    tables = []
    while not source.exhausted():
        tables.append(source.poll(1000, 0.1))
    return tables


def test_batch_source_splits_files_across_workers(wh: Path, source_table: Table) -> None:
    planned = sorted(t.file.file_path for t in source_table.scan().plan_files())
    seen: list[int] = []
    for worker in range(2):
        source = new_source(wh)
        source.open(worker, 2, None)
        tables = drain(source)
        assert all(t.num_rows in (6, 7) for t in tables)
        assert all(t.schema.names == SCHEMA.names for t in tables)
        owned = set(source.snapshot_positions()["files"])
        assert owned == {p for i, p in enumerate(planned) if i % 2 == worker}
        seen += [i for t in tables for i in t.column("id").to_pylist()]
        assert source.poll(1000, 0.1).num_rows == 0
        source.close()
    assert_exactly_once(seen)
    whole = pa.concat_tables([source_table.scan().to_arrow()]).sort_by("id")
    assert whole.column("checksum").to_pylist() == DATA.column("checksum").to_pylist()


def test_batch_source_restore_rereads_the_same_snapshot(wh: Path, source_table: Table) -> None:
    crash = Crash()
    first = new_source(wh, crash)
    first.open(0, 1, None)
    got = [first.poll(1000, 0.1) for _ in range(4)]
    assert crash.points.count("source.poll.after") == 4
    positions = json.loads(json.dumps(first.snapshot_positions()))  # what a checkpoint store keeps
    first.ack(positions)
    assert crash.points[-1] == "source.ack.before"
    first.close()
    assert positions["snapshot_id"] == source_table.current_snapshot().snapshot_id

    # A later commit to the table must not change what the restored source hands out.
    source_table.append(DATA.slice(0, 10).set_column(0, "id", pa.array(range(1000, 1010), pa.int64())))

    restored = new_source(wh)
    restored.open(0, 1, positions)
    rest = drain(restored)
    assert restored.exhausted()
    ids = [i for t in got + rest for i in t.column("id").to_pylist()]
    assert_exactly_once(ids)

    fresh = new_source(wh)  # no positions: the current snapshot, with the new rows
    fresh.open(0, 1, None)
    assert sorted(i for t in drain(fresh) for i in t.column("id").to_pylist()) == \
        list(range(ROWS)) + list(range(1000, 1010))


def test_batch_source_on_an_empty_table_is_exhausted(wh: Path) -> None:
    catalog = reader(wh)
    catalog.create_namespace_if_not_exists("chaos")
    catalog.create_table("chaos.src", schema=SCHEMA)
    source = new_source(wh)
    source.open(0, 1, None)
    assert source.exhausted()
    assert source.poll(10, 0.1).num_rows == 0
    assert source.snapshot_positions() == {"snapshot_id": None, "files": {}}


# -- batch sink -----------------------------------------------------------------------------------
def test_batch_sink_appends_at_prepare(wh: Path) -> None:
    crash = Crash()
    sink = IcebergBatchSink(uri(wh), wh, "out", JOB, 0, crash)
    sink.write(DATA.slice(0, 50))
    handle = sink.prepare(1)
    assert handle.sink == "iceberg-batch"
    assert_exactly_once(visible_ids(wh), range(50))  # visible before any commit
    sink.commit(handle)
    sink.write(DATA.slice(50, 50))
    sink.prepare(2)
    assert_exactly_once(visible_ids(wh))
    assert len(snapshots(wh)) == 2
    assert crash.points == ["sink.prepare.before", "sink.prepare.after"] * 2


def test_batch_sink_replay_after_a_crash_duplicates(wh: Path) -> None:
    """At least once at best: rows appended before a crash are appended again by the replay."""
    sink = IcebergBatchSink(uri(wh), wh, "out", JOB, 0, Crash("sink.prepare.after"))
    sink.write(DATA)
    with pytest.raises(SimulatedCrash):
        sink.prepare(1)
    again = IcebergBatchSink(uri(wh), wh, "out", JOB, 0, Crash())
    again.recover([])
    again.write(DATA)
    again.prepare(1)
    ids = visible_ids(wh)
    assert len(ids) == 2 * ROWS and set(ids) == set(range(ROWS))


# -- two-phase sink -------------------------------------------------------------------------------
def test_two_phase_is_invisible_until_commit(wh: Path) -> None:
    crash = Crash()
    sink = two_phase(wh, crash, max_file_rows=40)
    sink.write(DATA.slice(0, 60))
    sink.write(DATA.slice(60, 40))
    handle = sink.prepare(1)
    assert handle.sink == "iceberg-2pc" and len(handle.payload["files"]) == 3
    assert all(Path(f.removeprefix("file://")).exists() for f in handle.payload["files"])
    assert visible_ids(wh) == [] and snapshots(wh) == []
    sink.commit(handle)
    assert_exactly_once(visible_ids(wh))
    (summary,) = snapshots(wh)
    assert summary["chaos.job-id"] == JOB and summary["chaos.worker"] == "0"
    assert summary[MAX_COMMITTED_PROP] == "1" and summary["added-data-files"] == "3"
    assert crash.points == ["sink.prepare.before", "sink.write.mid", "sink.prepare.after",
                            "sink.commit.before", "sink.commit.after"]
    whole = load(wh).scan().to_arrow().sort_by("id")
    assert whole.column("checksum").to_pylist() == DATA.column("checksum").to_pylist()


def test_two_phase_commit_twice_is_a_noop(wh: Path) -> None:
    sink = two_phase(wh)
    sink.write(DATA)
    handle = sink.prepare(1)
    sink.commit(handle)
    sink.commit(handle)
    two_phase(wh).commit(handle)  # another instance, e.g. after a restart
    assert_exactly_once(visible_ids(wh))
    assert len(snapshots(wh)) == 1


def test_two_phase_several_checkpoints_and_workers(wh: Path) -> None:
    sinks = [two_phase(wh, worker=w) for w in range(2)]
    for c in range(1, 4):
        for w, sink in enumerate(sinks):
            part = DATA.filter(pc.equal(pc.bit_wise_and(DATA.column("id"), 7), (c - 1) * 2 + w))
            sink.write(part)
        handles = [sink.prepare(c) for sink in sinks]
        for sink, handle in zip(sinks, handles):
            sink.commit(handle)
    ids = visible_ids(wh)
    assert len(ids) == len(set(ids))
    assert set(ids) == {i for i in range(ROWS) if i % 8 < 6}
    by_worker = Counter(s["chaos.worker"] for s in snapshots(wh))
    assert by_worker == {"0": 3, "1": 3}


PREPARE_POINTS = ["sink.prepare.before", "sink.write.mid", "sink.prepare.after"]
COMMIT_POINTS = ["sink.commit.before", "sink.commit.after"]


@pytest.mark.parametrize("point", PREPARE_POINTS + COMMIT_POINTS)
def test_two_phase_crash_then_recover_is_exactly_once(wh: Path, point: str) -> None:
    """Checkpoint 1 commits cleanly; checkpoint 2 crashes at `point`; a new sink recovers.

    A crash during prepare loses the handle (it never reached the coordinator): recovery gets the
    last persisted checkpoint's handles only, and the source replays checkpoint 2's rows. A crash
    during commit happens after the checkpoint was persisted, so recovery gets its handle.
    """
    first = two_phase(wh, Crash(point, hit=2), max_file_rows=20)
    first.write(DATA.slice(0, 40))
    h1 = first.prepare(1)
    first.commit(h1)
    first.write(DATA.slice(40, 60))
    h2 = None
    with pytest.raises(SimulatedCrash):
        h2 = first.prepare(2)
        first.commit(h2)
    assert 0 < len(visible_ids(wh)) <= ROWS

    restarted = two_phase(wh, max_file_rows=20)
    if point in PREPARE_POINTS:
        assert h2 is None
        restarted.recover([h1])
        assert restarted.orphans_removed == {"sink.prepare.before": 0, "sink.write.mid": 1,
                                             "sink.prepare.after": 3}[point]
        assert_exactly_once(visible_ids(wh), range(40))
        assert staged_files(wh) == sorted(Path(f).name for f in h1.payload["files"])
        restarted.write(DATA.slice(40, 60))  # the source rewinds to checkpoint 1 and replays
        restarted.commit(restarted.prepare(2))
    else:
        assert h2 is not None
        restarted.recover([h1, h2])
        assert restarted.orphans_removed == 0
    assert_exactly_once(visible_ids(wh))
    assert [s[MAX_COMMITTED_PROP] for s in snapshots(wh)] == ["1", "2"]
    assert not [f for f in staged_files(wh) if f.startswith(".")]


def data_files(wh: Path, name: str = "out") -> list[str]:
    """Every file in the table's data directory, whoever wrote it."""
    data = wh / "chaos" / name / "data"
    return sorted(p.name for p in data.iterdir()) if data.is_dir() else []


def test_batch_sink_disk_fault_at_each_file_of_the_append_shows_nothing_and_the_replay_is_exactly_once(
        tmp_path: Path) -> None:
    """Certification scenario 3 on the plain sink: pyiceberg writes the append's files itself (the
    data file, the manifest, the manifest list) through the table's FileIO, which the sink wraps, so
    an EIO can strike each of them in turn, also after an earlier file of the same append landed.
    Every time the append fails with no new snapshot; the replay after the heal appends once."""
    struck: list[list[str]] = []
    for k in range(1, 10):
        wh = tmp_path / f"wh-{k}"
        wh.mkdir()
        ctl = wh / "disk-faults.json"
        sink = IcebergBatchSink(uri(wh), wh, "out", JOB, 0, Crash(), disk=DiskFaults(ctl))
        sink.write(DATA.slice(0, 40))
        first = sink.prepare(1)
        sink.disk = disk = FailAt(ctl, fail_at=k)
        sink.write(DATA.slice(40))
        try:
            sink.prepare(2)
        except OSError as e:
            assert e.errno == errno.EIO and disk.faulted == {"write": 1}
        else:
            assert disk.heal is None and len(snapshots(wh)) == 2, "only an append the fault missed commits"
            break
        struck.append(data_files(wh))
        assert len(snapshots(wh)) == 1
        assert_exactly_once(visible_ids(wh), range(40))

        assert disk.heal is not None
        disk.heal()  # the worker died of the OSError; its restart replays checkpoint 2 from checkpoint 1
        restarted = IcebergBatchSink(uri(wh), wh, "out", JOB, 0, Crash(), disk=DiskFaults(ctl))
        restarted.recover([first])
        restarted.write(DATA.slice(40))
        restarted.commit(restarted.prepare(2))
        assert_exactly_once(visible_ids(wh))
    assert len(struck) >= 3, "the data file, the manifest and the manifest list are each struck"
    assert len(struck[-1]) > len(struck[0]), "a later strike lands after the append's data file was written"


def test_two_phase_disk_fault_at_every_data_file_step_shows_nothing_and_the_retry_is_exactly_once(
        tmp_path: Path) -> None:
    """Checkpoint 1 commits; an EIO strikes each checked operation of checkpoint 2's prepare in turn
    (three data files: write, fsync, rename, directory fsync each). pyiceberg's scan sees
    checkpoint 1 only, and after the heal a restarted sink recovers from checkpoint 1, removes what
    the failed prepare left, and the replayed checkpoint 2 lands exactly once."""
    struck: list[str] = []
    for k in range(1, 13):
        wh = tmp_path / f"wh-{k}"
        wh.mkdir()
        sink = two_phase(wh, max_file_rows=20)
        sink.write(DATA.slice(0, 40))
        first = sink.prepare(1)
        sink.commit(first)
        disk = sink.disk = FailAt(wh / "disk-faults.json", fail_at=k)
        sink.write(DATA.slice(40, 60))
        with pytest.raises(OSError) as raised:
            sink.prepare(2)
        assert raised.value.errno == errno.EIO and len(disk.ops) == k
        assert_exactly_once(visible_ids(wh), range(40))
        assert len(snapshots(wh)) == 1

        assert disk.heal is not None
        disk.heal()
        restarted = two_phase(wh, max_file_rows=20, disk=DiskFaults(wh / "disk-faults.json"))
        restarted.recover([first])
        assert staged_files(wh) == sorted(Path(f).name for f in first.payload["files"]), f"op {k}: orphans"
        restarted.write(DATA.slice(40, 60))
        restarted.commit(restarted.prepare(2))
        assert_exactly_once(visible_ids(wh))
        struck.append(disk.ops[-1])
    assert struck == ["write", "fsync", "rename", "fsync_dir"] * 3


def test_recover_without_handles_removes_prepared_files(wh: Path) -> None:
    sink = two_phase(wh, max_file_rows=30)
    sink.write(DATA)
    handle = sink.prepare(1)
    assert len(staged_files(wh)) == 4
    restarted = two_phase(wh)
    restarted.recover([])
    assert restarted.orphans_removed == 4
    assert staged_files(wh) == []
    assert visible_ids(wh) == [] and snapshots(wh) == []
    with pytest.raises(CommitError, match="data files are gone"):
        restarted.commit(handle)


def test_recover_leaves_other_workers_and_committed_files(wh: Path) -> None:
    other = two_phase(wh, worker=1)
    other.write(DATA.slice(0, 10))
    pending_of_other = other.prepare(1)
    mine = two_phase(wh)
    mine.write(DATA.slice(10, 10))
    mine.commit(mine.prepare(1))
    mine.write(DATA.slice(20, 10))
    mine.prepare(2)
    restarted = two_phase(wh)
    restarted.recover([])
    assert restarted.orphans_removed == 1
    other.commit(pending_of_other)
    assert_exactly_once(visible_ids(wh), range(20))


def test_lost_commit_response_is_not_committed_twice(wh: Path) -> None:
    """iceberg #2808: the commit landed, the response was lost (crash at sink.commit.after)."""
    sink = two_phase(wh, Crash("sink.commit.after"))
    sink.write(DATA)
    handle = sink.prepare(7)
    with pytest.raises(SimulatedCrash):
        sink.commit(handle)
    assert_exactly_once(visible_ids(wh))
    restarted = two_phase(wh)
    restarted.recover([handle])
    assert_exactly_once(visible_ids(wh))
    assert [s[MAX_COMMITTED_PROP] for s in snapshots(wh)] == ["7"]
    assert restarted.orphans_removed == 0


def test_slow_commit_racing_a_restarted_committer(wh: Path) -> None:
    """iceberg #14425: between the old committer's ancestry check and its catalog commit, a restarted
    committer commits the same checkpoint. The old one's commit fails and its re-check sees it."""
    handle_box: list[CommitHandle] = []
    crash = Crash(on={"sink.commit.before": lambda: two_phase(wh).recover(handle_box)})
    slow = two_phase(wh, crash)
    slow.write(DATA)
    handle_box.append(slow.prepare(1))
    slow.commit(handle_box[0])
    assert_exactly_once(visible_ids(wh))
    assert len(snapshots(wh)) == 1
    assert "sink.commit.after" not in crash.points  # the slow committer found it already done


def test_concurrent_commit_of_another_worker_is_retried(wh: Path) -> None:
    other = two_phase(wh, worker=1)
    other.write(DATA.slice(50, 50))
    other_handle = other.prepare(1)
    crash = Crash(on={"sink.commit.before": lambda: other.commit(other_handle)})
    sink = two_phase(wh, crash)
    sink.write(DATA.slice(0, 50))
    sink.commit(sink.prepare(1))
    assert_exactly_once(visible_ids(wh))
    assert sorted(s["chaos.worker"] for s in snapshots(wh)) == ["0", "1"]
    assert crash.points.count("sink.commit.before") == 2  # one failed attempt, one that landed


def test_commit_failed_exception_once_is_retried(wh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = two_phase(wh)
    sink.write(DATA)
    handle = sink.prepare(1)
    real = SqlCatalog.commit_table
    calls = []

    def flaky(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise CommitFailedException("simulated concurrent update")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SqlCatalog, "commit_table", flaky)
    sink.commit(handle)
    assert len(calls) == 2
    assert_exactly_once(visible_ids(wh))
    assert len(snapshots(wh)) == 1


def test_schema_evolution_adds_a_nullable_column(wh: Path) -> None:
    sink = two_phase(wh)
    sink.write(DATA.slice(0, 50))
    sink.commit(sink.prepare(1))
    wider = DATA.slice(50, 50).append_column("region", pa.array(["eu"] * 50, pa.string()))
    sink.write(wider.slice(0, 25))
    sink.write(wider.slice(25, 25))
    sink.commit(sink.prepare(2))
    table = load(wh)
    assert table.schema().find_field("region").optional
    result = table.scan().to_arrow().sort_by("id")
    assert_exactly_once(result.column("id").to_pylist())
    regions = result.column("region").to_pylist()
    assert regions[:50] == [None] * 50 and regions[50:] == ["eu"] * 50


def test_abort_deletes_staged_files_and_refuses_a_committed_handle(wh: Path) -> None:
    sink = two_phase(wh)
    sink.write(DATA.slice(0, 50))
    committed = sink.prepare(1)
    sink.commit(committed)
    sink.write(DATA.slice(50, 50))
    aborted = sink.prepare(2)
    sink.abort(aborted)
    assert staged_files(wh) == sorted(Path(f).name for f in committed.payload["files"])
    with pytest.raises(CommitError, match="cannot be aborted"):
        sink.abort(committed)
    assert_exactly_once(visible_ids(wh), range(50))


def test_reused_or_out_of_order_checkpoints_are_errors(wh: Path) -> None:
    sink = two_phase(wh)
    sink.write(DATA.slice(0, 10))
    h1 = sink.prepare(1)
    sink.write(DATA.slice(10, 10))
    h2 = sink.prepare(2)
    sink.commit(h2)
    with pytest.raises(CommitError, match="out of order"):
        sink.commit(h1)  # skipping it as "already committed" would silently drop its rows
    sink.write(DATA.slice(20, 10))
    with pytest.raises(CommitError, match="reused"):
        sink.prepare(2)


# -- seeded bugs: the checks above must be able to fail --------------------------------------------
class NoAncestryCheckSink(IcebergTwoPhaseSink):
    """Mutant: never looks at the snapshot ancestry, and has pyiceberg's duplicate-file guard off,
    so re-committing after a lost response publishes the checkpoint again (iceberg #2808)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.check_duplicate_files = False

    def committed_checkpoints(self, table: Table) -> tuple[int | None, set[int]]:
        return None, set()


class BlindRetrySink(IcebergTwoPhaseSink):
    """Mutant: leaves pyiceberg's commit retry on, which rebases the append after a conflict
    without re-checking the ancestry (iceberg #14425)."""

    def _load_for_commit(self) -> Table:
        return self.catalog.load_table("chaos.out")


def test_mutant_without_ancestry_check_duplicates_on_recommit(wh: Path) -> None:
    sink = two_phase(wh, Crash("sink.commit.after"), cls=NoAncestryCheckSink)
    sink.write(DATA)
    handle = sink.prepare(1)
    with pytest.raises(SimulatedCrash):
        sink.commit(handle)
    two_phase(wh, cls=NoAncestryCheckSink).recover([handle])
    ids = visible_ids(wh)
    assert len(ids) == 2 * ROWS and set(ids) == set(range(ROWS))
    assert len(snapshots(wh)) == 2


def test_ancestry_check_alone_is_what_prevents_duplicates(wh: Path) -> None:
    """With the ancestry check off but pyiceberg's duplicate-file guard on, a re-commit fails
    loudly instead: no duplicate, but no clean recovery either."""
    sink = two_phase(wh)
    sink.write(DATA)
    handle = sink.prepare(1)
    sink.commit(handle)
    mutant = two_phase(wh, cls=NoAncestryCheckSink)
    mutant.check_duplicate_files = True
    with pytest.raises(ValueError, match="already referenced"):
        mutant.commit(handle)
    assert_exactly_once(visible_ids(wh))


def test_mutant_with_blind_retry_duplicates_in_the_race(wh: Path) -> None:
    handle_box: list[CommitHandle] = []
    crash = Crash(on={"sink.commit.before": lambda: two_phase(wh).recover(handle_box)})
    slow = two_phase(wh, crash, cls=BlindRetrySink)
    slow.write(DATA)
    handle_box.append(slow.prepare(1))
    slow.commit(handle_box[0])
    ids = visible_ids(wh)
    assert len(ids) == 2 * ROWS and set(ids) == set(range(ROWS))
    assert len(snapshots(wh)) == 2
