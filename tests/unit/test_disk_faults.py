"""Disk faults (EIO, ENOSPC, stall) on the Parquet sinks' file writes, through the control file.

Certification scenario 3, "sink write-failure rollback and retry", on real files in tmp_path and
read back only with pyarrow: a failed write leaves nothing partial visible, and after the fault
heals a new sink (a restarted worker) recovers from the persisted checkpoint and the source's
replay neither loses nor duplicates. A seeded-bug sink that writes its visible file in place shows
that the "nothing partial visible" check can fail.
"""

from __future__ import annotations

import errno
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import expected_table
from drivers.sdk.contracts import CommitHandle
from drivers.sdk.diskfaults import DiskFaultControl, DiskFaults
from drivers.parquet_sinks import CommitError, ParquetSink, TwoPhaseParquetSink
from faults.disk import write_control as inject
from tests.unit.crashes import Crash

ROWS = 100
TABLE = expected_table(WorkloadSpec(records=ROWS, rate=50, keys=5, payload_size=16), seed=3)
ERRNO = {"eio": errno.EIO, "enospc": errno.ENOSPC}


class FailAt(DiskFaults):
    """Turns a real control-file fault on right before the `fail_at`-th checked file operation
    (counting from 1), so that a test can strike every operation of a cycle in turn."""

    def __init__(self, control_file: Path, fail_at: int | None = None, mode: str = "eio"):
        super().__init__(control_file)
        self.fail_at, self.mode = fail_at, mode
        self.ops: list[str] = []
        self.heal: Callable[[], None] | None = None

    def check(self, worker_name: str, op: str, path: Path | str | None = None) -> None:
        self.ops.append(op)
        if len(self.ops) == self.fail_at:
            self.heal = inject(self.control_file, self.mode, worker_name)
        super().check(worker_name, op, path)


# -- what an independent reader sees ----------------------------------------------------------------
def read_visible(directory: Path) -> list[int]:
    """pyarrow's dataset with its default hidden-file rules; a torn visible file raises."""
    if not directory.exists():
        return []
    table = ds.dataset(directory, format="parquet").to_table()
    return table.column("id").to_pylist() if table.num_rows else []


def assert_nothing_partial_visible(directory: Path, expected: list[int]) -> None:
    """Exactly the committed rows are visible: no torn file, no extra or missing rows."""
    try:
        ids = read_visible(directory)
    except (pa.ArrowInvalid, OSError) as e:
        raise AssertionError(f"partial or corrupt visible file: {e}") from e
    assert sorted(ids) == sorted(expected), f"partial visible output: {len(ids)} rows, expected {len(expected)}"


def assert_exactly_once(ids: list[int], expected: range = range(ROWS)) -> None:
    dups = {i: n for i, n in Counter(ids).items() if n > 1}
    assert not dups, f"duplicates: {dups}"
    assert sorted(ids) == list(expected), f"missing: {sorted(set(expected) - set(ids))}"


def hidden_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def ids(rows: range) -> list[int]:
    return list(rows)


@pytest.fixture
def ctl(tmp_path: Path) -> Path:
    return tmp_path / "run" / "disk-faults.json"


# -- the control file ---------------------------------------------------------------------------------
def test_absent_control_file_is_a_healthy_disk(ctl: Path) -> None:
    disk = DiskFaults(ctl)
    assert disk.current() is None
    disk.check("worker-0", "write")
    assert disk.reads == 0 and disk.faulted == {}


@pytest.mark.parametrize("mode", ["eio", "enospc"])
def test_eio_and_enospc_raise_the_kernel_error_for_the_target_only(ctl: Path, mode: str) -> None:
    disk = DiskFaults(ctl)
    heal = inject(ctl, mode, "worker-0")
    with pytest.raises(OSError) as raised:
        disk.check("worker-0", "rename", Path("/out/part-1.parquet"))
    assert raised.value.errno == ERRNO[mode] and raised.value.filename == "/out/part-1.parquet"
    assert "injected disk fault" in str(raised.value)
    disk.check("worker-1", "rename")  # not the target
    heal()
    disk.check("worker-0", "rename")  # healed
    inject(ctl, mode, "*")
    for worker in ("worker-0", "worker-1"):
        with pytest.raises(OSError):
            disk.check(worker, "write")
    assert disk.faulted == {"rename": 1, "write": 2}


def test_control_file_is_parsed_only_when_it_changes(ctl: Path) -> None:
    disk = DiskFaults(ctl)
    inject(ctl, "eio", "worker-1")
    for _ in range(500):
        disk.check("worker-0", "write")
    assert disk.reads == 1
    inject(ctl, "eio", "worker-1")  # same content, new file (atomic replace): read again
    disk.check("worker-0", "write")
    assert disk.reads == 2
    inject(ctl, "enospc", "worker-0")
    with pytest.raises(OSError) as raised:
        disk.check("worker-0", "write")
    assert raised.value.errno == errno.ENOSPC and disk.reads == 3


def test_stall_delays_the_operation_then_lets_it_proceed(ctl: Path) -> None:
    disk = DiskFaults(ctl)
    inject(ctl, "stall", "worker-0", stall_s=0.3)
    started = time.monotonic()
    disk.check("worker-0", "write")
    assert 0.3 <= time.monotonic() - started < 1.0
    started = time.monotonic()
    disk.check("worker-1", "write")  # not the target
    assert time.monotonic() - started < 0.1


def test_stall_is_capped_and_a_heal_ends_it_early(ctl: Path) -> None:
    capped = DiskFaults(ctl, max_stall_s=0.2)
    heal = inject(ctl, "stall", "worker-0", stall_s=1000)
    started = time.monotonic()
    capped.check("worker-0", "fsync")
    assert 0.2 <= time.monotonic() - started < 1.0
    assert DiskFaults.MAX_STALL_S == 30.0

    healer = threading.Timer(0.3, heal)
    healer.start()
    started = time.monotonic()
    DiskFaults(ctl).check("worker-0", "fsync")
    healer.join()
    assert 0.3 <= time.monotonic() - started < 2.0


def test_stall_switched_to_eio_fails_the_stalled_operation(ctl: Path) -> None:
    disk = DiskFaults(ctl)
    inject(ctl, "stall", "*", stall_s=20)
    switch = threading.Timer(0.3, lambda: inject(ctl, "eio", "*"))
    switch.start()
    with pytest.raises(OSError) as raised:
        disk.check("worker-0", "write")
    switch.join()
    assert raised.value.errno == errno.EIO


@pytest.mark.parametrize("content", ["{not json", "[]", '{"mode": "eio"}', '{"mode": "ebusy", "target": "*"}',
                                     '{"mode": "stall", "target": "*", "stall_s": -1}',
                                     '{"mode": "eio", "target": "*", "op": "rename"}'])
def test_an_invalid_control_file_fails_loudly(ctl: Path, content: str) -> None:
    ctl.parent.mkdir(parents=True)
    ctl.write_text(content)
    with pytest.raises(ValueError, match="invalid disk-fault control file"):
        DiskFaults(ctl).check("worker-0", "write")


def test_inject_writes_the_control_file_atomically_and_heal_removes_it(ctl: Path) -> None:
    heal = inject(ctl, "stall", "worker-0", stall_s=2.5)
    assert json.loads(ctl.read_text()) == {"mode": "stall", "stall_s": 2.5, "target": "worker-0"}
    assert DiskFaultControl.from_json(ctl.read_text()) == DiskFaultControl("stall", "worker-0", 2.5)
    assert [p.name for p in ctl.parent.iterdir()] == ["disk-faults.json"]  # no temporary file left
    heal()
    assert not ctl.exists()
    heal()  # idempotent
    inject(ctl, "eio", "*")
    assert json.loads(ctl.read_text()) == {"mode": "eio", "stall_s": 5.0, "target": "*"}


@pytest.mark.parametrize("mode, target, stall_s", [("ebusy", "*", 1.0), ("eio", "", 1.0), ("stall", "*", -1.0),
                                                   ("stall", "*", float("nan"))])
def test_inject_rejects_a_bad_fault_before_writing(ctl: Path, mode: str, target: str, stall_s: float) -> None:
    with pytest.raises(ValueError):
        inject(ctl, mode, target, stall_s)
    assert not ctl.exists()


# -- two-phase sink -------------------------------------------------------------------------------------
def new_2pc(out: Path, disk: DiskFaults | None, crash: Crash | None = None) -> TwoPhaseParquetSink:
    return TwoPhaseParquetSink(out, "job", 0, crash or Crash(), max_file_rows=30, disk=disk)


def write_rows(sink: TwoPhaseParquetSink | ParquetSink, rows: range, chunk: int = 10,
               before: Callable[[int], None] = lambda i: None) -> None:
    for i, start in enumerate(range(rows.start, rows.stop, chunk)):
        before(i)
        sink.write(TABLE.slice(start, min(chunk, rows.stop - start)))


@pytest.mark.parametrize("mode", ["eio", "enospc"])
@pytest.mark.parametrize("moment", ["first-write", "mid-write", "prepare-footer", "prepare-rename"])
def test_two_phase_write_or_prepare_failure_leaves_nothing_partial_and_replay_is_exactly_once(
        tmp_path: Path, ctl: Path, mode: str, moment: str) -> None:
    out = tmp_path / "out"
    heals: list[Callable[[], None]] = []

    def fault() -> None:
        heals.append(inject(ctl, mode, "worker-0"))

    crash = Crash()
    sink = new_2pc(out, DiskFaults(ctl), crash)
    write_rows(sink, range(0, 40))
    h1 = sink.prepare(1)
    sink.commit(h1)  # checkpoint 1 is persisted and committed
    crash.points.clear()
    if moment == "prepare-rename":  # between the renames of checkpoint 2's part files
        crash.on["sink.write.mid"] = fault

    with pytest.raises(OSError) as raised:
        write_rows(sink, range(40, ROWS), before=lambda i: fault() if (moment, i) in {
            ("first-write", 0), ("mid-write", 4)} else None)
        if moment == "prepare-footer":
            fault()
        sink.prepare(2)  # never returns a handle: nothing reaches the coordinator
    assert raised.value.errno == ERRNO[mode]
    assert "sink.prepare.after" not in crash.points
    if moment != "first-write":
        assert hidden_files(out), "the fault should strike after something was staged"
    assert_nothing_partial_visible(out, ids(range(0, 40)))
    with pytest.raises(CommitError, match="recover"):  # poisoned: no handle may claim torn rows
        sink.prepare(2)

    heals[0]()  # the disk recovers; the supervisor restarts the worker from checkpoint 1
    restarted = new_2pc(out, DiskFaults(ctl))
    restarted.recover([h1])
    assert hidden_files(out) == [] and restarted.orphans_removed >= (0 if moment == "first-write" else 1)
    write_rows(restarted, range(40, ROWS))  # the source replays from checkpoint 1's positions
    restarted.commit(restarted.prepare(2))
    assert_exactly_once(read_visible(out))


@pytest.mark.parametrize("mode", ["eio", "enospc"])
@pytest.mark.parametrize("moment", ["commit-before", "commit-mid"])
def test_two_phase_commit_failure_then_recover_and_recommit_is_exactly_once(
        tmp_path: Path, ctl: Path, mode: str, moment: str) -> None:
    out = tmp_path / "out"
    heals: list[Callable[[], None]] = []

    def fault() -> None:
        heals.append(inject(ctl, mode, "worker-0"))

    crash = Crash(on={"sink.commit.mid": fault}) if moment == "commit-mid" else Crash()
    sink = new_2pc(out, DiskFaults(ctl), crash)
    write_rows(sink, range(ROWS))
    handle = sink.prepare(1)  # the coordinator persists checkpoint 1 with this handle, then commits
    if moment == "commit-before":
        fault()
    with pytest.raises(OSError) as raised:
        sink.commit(handle)
    assert raised.value.errno == ERRNO[mode]
    # The renames are per file: a reader sees either none of the checkpoint or whole part files.
    assert_nothing_partial_visible(out, [] if moment == "commit-before" else ids(range(30)))

    still_failing = new_2pc(out, DiskFaults(ctl))
    with pytest.raises(OSError):  # restarted while the disk still fails: recovery fails too (and retries)
        still_failing.recover([handle])
    heals[0]()
    restarted = new_2pc(out, DiskFaults(ctl))
    restarted.recover([handle])
    assert_exactly_once(read_visible(out))
    assert hidden_files(out) == [] and restarted.manifest_path(handle).exists()
    restarted.recover([handle])  # and again: idempotent
    assert_exactly_once(read_visible(out))


CHECKPOINTS = [(1, range(0, 40)), (2, range(40, ROWS))]


def run_two_phase(sink: TwoPhaseParquetSink, start: int, persisted: list[CommitHandle],
                  phase: list[str] | None = None) -> None:
    """Checkpoints from index `start`: write, prepare, the coordinator persists the handle, commit.
    `phase` ends with what was running when an exception escaped: "stage" or "commit"."""
    phase = [] if phase is None else phase
    for checkpoint_id, rows in CHECKPOINTS[start:]:
        phase.append("stage")
        write_rows(sink, rows)
        handle = sink.prepare(checkpoint_id)
        persisted.append(handle)
        phase.append("commit")
        sink.commit(handle)


def test_two_phase_a_failure_at_every_file_operation_recovers_exactly_once(tmp_path: Path) -> None:
    """Strike each checked operation of a two-checkpoint run in turn (write, footer, fsync, rename,
    directory fsync, manifest), then restart from the last persisted checkpoint."""
    baseline = FailAt(tmp_path / "baseline.json")
    run_two_phase(new_2pc(tmp_path / "baseline", baseline), 0, [])
    assert_exactly_once(read_visible(tmp_path / "baseline"))
    assert set(baseline.ops) == {"write", "fsync", "rename", "fsync_dir"} and len(baseline.ops) > 30

    struck: Counter[tuple[str, str]] = Counter()
    for k in range(1, len(baseline.ops) + 1):
        out, ctl = tmp_path / f"out-{k}", tmp_path / f"ctl-{k}.json"
        disk = FailAt(ctl, fail_at=k, mode="enospc" if k % 2 else "eio")
        persisted: list[CommitHandle] = []
        phase: list[str] = []
        with pytest.raises(OSError) as raised:
            run_two_phase(new_2pc(out, disk), 0, persisted, phase)
        assert raised.value.errno in (errno.EIO, errno.ENOSPC)
        assert disk.heal is not None and len(disk.ops) == k
        where = f"op {k} ({disk.ops[-1]}, during {phase[-1]} of checkpoint {len(phase) // 2 + len(phase) % 2})"
        committing = phase[-1] == "commit"  # the last persisted handle's commit failed
        done = len(persisted) - 1 if committing else len(persisted)
        committed_rows = [i for _, rows in CHECKPOINTS[:done] for i in rows]
        if committing:
            # A failed commit may show part of its checkpoint, but only as whole part files.
            seen = read_visible(out)
            assert not [i for i, n in Counter(seen).items() if n > 1], where
            assert set(committed_rows) <= set(seen) <= set(committed_rows) | set(CHECKPOINTS[done][1]), where
        else:
            assert_nothing_partial_visible(out, committed_rows)

        disk.heal()
        restarted = new_2pc(out, DiskFaults(ctl))
        restarted.recover(persisted[-1:])  # the restore message: the last persisted checkpoint's handles
        assert hidden_files(out) == [], f"{where}: orphans {hidden_files(out)}"
        run_two_phase(restarted, len(persisted), persisted)
        leftovers = [p.name for p in out.rglob(".*")]  # including a manifest's temporary file
        assert leftovers == [], f"{where}: leftovers {leftovers}"
        try:
            assert_exactly_once(read_visible(out))
        except AssertionError as e:
            raise AssertionError(f"failure at {where}: {e}") from e
        struck[disk.ops[-1], phase[-1]] += 1
    assert set(struck) == {(op, p) for op in ("write", "fsync", "rename", "fsync_dir") for p in ("stage", "commit")}


def test_two_phase_stall_delays_the_write_and_then_succeeds(tmp_path: Path, ctl: Path) -> None:
    out = tmp_path / "out"
    sink = new_2pc(out, DiskFaults(ctl))
    heal = inject(ctl, "stall", "worker-0", stall_s=0.3)
    started = time.monotonic()
    sink.write(TABLE.slice(0, 10))  # one checked operation
    assert 0.3 <= time.monotonic() - started < 1.5
    other = TwoPhaseParquetSink(tmp_path / "other", "job", 1, Crash(), disk=DiskFaults(ctl))
    started = time.monotonic()
    other.write(TABLE.slice(0, 10))  # worker-1 is not the target
    assert time.monotonic() - started < 0.2
    heal()
    write_rows(sink, range(10, ROWS))
    sink.commit(sink.prepare(1))
    assert_exactly_once(read_visible(out))


def test_two_phase_without_a_disk_makes_no_checks_and_a_healthy_disk_changes_nothing(tmp_path: Path) -> None:
    for disk in (None, FailAt(tmp_path / "ctl.json")):
        out = tmp_path / f"out-{disk is None}"
        run_two_phase(new_2pc(out, disk), 0, [])
        assert_exactly_once(read_visible(out))
        assert hidden_files(out) == []


# -- plain sink -----------------------------------------------------------------------------------------
def new_plain(out: Path, disk: DiskFaults | None, sink_class: type[ParquetSink] = ParquetSink) -> ParquetSink:
    return sink_class(out, "job", 0, Crash(), disk=disk)


@pytest.mark.parametrize("mode", ["eio", "enospc"])
def test_plain_sink_failure_in_prepare_shows_no_partial_file_and_replay_loses_nothing(
        tmp_path: Path, ctl: Path, mode: str) -> None:
    out = tmp_path / "out"
    sink = new_plain(out, DiskFaults(ctl))
    write_rows(sink, range(0, 40))
    h1 = sink.prepare(1)
    write_rows(sink, range(40, ROWS))
    heal = inject(ctl, mode, "worker-0")
    with pytest.raises(OSError) as raised:
        sink.prepare(2)
    assert raised.value.errno == ERRNO[mode]
    assert len(hidden_files(out)) == 1  # the hidden staging file, never renamed into view
    assert_nothing_partial_visible(out, ids(range(0, 40)))

    heal()
    restarted = new_plain(out, DiskFaults(ctl))
    restarted.recover([h1])
    assert hidden_files(out) == []
    write_rows(restarted, range(40, ROWS))
    restarted.prepare(2)
    assert_exactly_once(read_visible(out))  # the failed file never became visible: no duplicates either


def test_plain_sink_duplicates_only_when_the_failure_follows_the_rename(tmp_path: Path) -> None:
    """write_durably's operations: write, fsync, rename, directory fsync. A failure before the rename
    shows nothing and the replay is exact; after it (directory fsync) the file is visible and the
    replay duplicates it, which the plain sink's at-least-once guarantee allows."""
    ops = ["write", "fsync", "rename", "fsync_dir"]
    for k, op in enumerate(ops, start=1):
        out, ctl = tmp_path / f"out-{op}", tmp_path / f"ctl-{op}.json"
        disk = FailAt(ctl, fail_at=k)
        sink = new_plain(out, disk)
        write_rows(sink, range(ROWS))
        with pytest.raises(OSError):
            sink.prepare(1)
        assert disk.ops == ops[:k]
        became_visible = bool(read_visible(out))
        assert became_visible == (op == "fsync_dir")
        assert disk.heal is not None
        disk.heal()
        restarted = new_plain(out, DiskFaults(ctl))
        restarted.recover([])
        write_rows(restarted, range(ROWS))
        restarted.prepare(1)
        seen = read_visible(out)
        assert set(seen) == set(range(ROWS))  # never a loss
        if became_visible:
            assert Counter(seen) == Counter(2 * list(range(ROWS)))
        else:
            assert_exactly_once(seen)


# -- the "nothing partial visible" check can fail ---------------------------------------------------------
class InPlaceParquetSink(ParquetSink):
    """Seeded bug: writes the final, visible file in place, one row group at a time, with no hidden
    staging file and no rename, so a write failure leaves a torn file where readers look: without
    a footer when the process dies at once, or a valid but short file when the writer is closed
    on the way out (`close_on_error`)."""

    ROW_GROUP = 20
    close_on_error = False

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        files: list[str] = []
        if self._buffer:
            table = pa.concat_tables(self._buffer)
            name = f"part-{self.job_id}-w{self.worker}-c{checkpoint_id}.parquet"
            self.output_dir.mkdir(parents=True, exist_ok=True)
            path = self.output_dir / name
            with open(path, "wb") as f:
                writer = pq.ParquetWriter(f, table.schema)
                try:
                    for start in range(0, table.num_rows, self.ROW_GROUP):
                        if self.disk is not None:
                            self.disk.check(f"worker-{self.worker}", "write", path)
                        writer.write_table(table.slice(start, self.ROW_GROUP))
                except BaseException:
                    if self.close_on_error:
                        writer.close()  # writes the footer: a valid file with the first row group only
                    else:
                        writer.is_open = False  # the process dies here: no footer is ever written
                    raise
                writer.close()
            self._buffer = []
            files.append(name)
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                            worker=self.worker, payload={"files": files})


@pytest.mark.parametrize("close_on_error", [False, True])
def test_buggy_in_place_sink_leaves_a_torn_visible_file_the_check_catches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, close_on_error: bool) -> None:
    monkeypatch.setattr(InPlaceParquetSink, "close_on_error", close_on_error)
    healthy = tmp_path / "healthy"
    buggy = new_plain(healthy, DiskFaults(tmp_path / "none.json"), InPlaceParquetSink)
    write_rows(buggy, range(ROWS))
    buggy.prepare(1)
    assert_nothing_partial_visible(healthy, ids(range(ROWS)))  # the bug hides while the disk is healthy

    out = tmp_path / "out"
    disk = FailAt(tmp_path / "ctl.json", fail_at=2)  # EIO between the first and second row group
    buggy = new_plain(out, disk, InPlaceParquetSink)
    write_rows(buggy, range(ROWS))
    with pytest.raises(OSError):
        buggy.prepare(1)
    assert disk.ops == ["write", "write"]
    assert [p.name for p in out.iterdir()] == ["part-job-w0-c1.parquet"] and (out / "part-job-w0-c1.parquet").stat().st_size
    if close_on_error:
        assert sorted(read_visible(out)) == list(range(InPlaceParquetSink.ROW_GROUP))  # readable, but short
    with pytest.raises(AssertionError, match="partial visible output: 20 rows" if close_on_error
                       else "partial or corrupt visible file"):
        assert_nothing_partial_visible(out, [])

    # The honest sink under the same fault: nothing visible.
    honest_out = tmp_path / "honest"
    honest = new_plain(honest_out, FailAt(tmp_path / "ctl-honest.json", fail_at=1))
    write_rows(honest, range(ROWS))
    with pytest.raises(OSError):
        honest.prepare(1)
    assert_nothing_partial_visible(honest_out, [])
