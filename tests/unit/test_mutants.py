"""Each shipped seeded bug, built the way the runtime builds it (its kind's table entry), does what its
docstring says on a real table or directory, and records `mutant.active` the first time it does.

The end-to-end proofs that the checkers catch them are the mutant and incident experiments, run by
`chaos certify --mutants` with a control run each; these tests pin down the bugs themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from chaos.checkers.duplicates import check_duplicates
from chaos.checkers.loss import check_loss
from chaos.checkers.schema import check_schema
from chaos.sides.delta import read_delta
from chaos.sides.hudi import read_hudi
from chaos.sides.iceberg import read_iceberg
from chaos.sides.parquet import read_parquet_output
from drivers.connectors import SINKS
from drivers.sdk.connector import WorkerContext, load
from drivers.sdk.crashpoints import NoCrashes
from drivers.sdk.history import History, read_history
from drivers.sdk.records import SCHEMA_V1, SCHEMA_V2, Workload, expected_table, versioned_tables

ROWS = 120
TABLE = expected_table(Workload(records=ROWS, rate=50, keys=5, payload_size=16), seed=5)


def build(kind: str, mutant: str, settings: dict, tmp_path: Path):
    """The mutant as the runtime's factory builds it, with a real history."""
    history = History(tmp_path / "history.jsonl", source="worker-0")
    ctx = WorkerContext(job_id="job", worker=0, workers=1, run_dir=tmp_path, crash=NoCrashes(), history=history,
                        mutant=mutant)
    variant = SINKS[kind].mutant(mutant)
    assert variant is not None
    return load(variant.driver).create(settings, ctx)


def active(tmp_path: Path) -> list[dict]:
    return [e for e in read_history(tmp_path / "history.jsonl") if e["event"] == "mutant.active"]


def ids(table: pa.Table) -> list[int]:
    return sorted(table.column("id").to_pylist()) if table.num_rows else []


def test_non_idempotent_commit_publishes_a_recommitted_checkpoint_twice(tmp_path):
    sink = build("parquet-2pc", "non-idempotent-commit", {"output_dir": str(tmp_path / "out")}, tmp_path)
    sink.write(TABLE)
    handle = sink.prepare(1)
    sink.commit(handle)
    assert ids(read_parquet_output(tmp_path / "out")) == list(range(ROWS))
    sink.commit(handle)  # as recovery would, not knowing whether the first attempt landed
    assert ids(read_parquet_output(tmp_path / "out")) == sorted(2 * list(range(ROWS)))
    assert check_duplicates(read_parquet_output(tmp_path / "out"), forbidden=True).failed
    (event,) = active(tmp_path)
    assert event["mutant"] == "non-idempotent-commit" and "copied" in event["what"]


def test_truncating_widen_stores_a_widened_column_wrapped_around(tmp_path):
    sink = build("parquet-2pc", "truncating-widen", {"output_dir": str(tmp_path / "out")}, tmp_path)
    workload = Workload(records=ROWS, rate=50, schema_change_at=60)
    before, after = versioned_tables(workload, 5)
    sink.write(before.cast(SCHEMA_V1))
    assert active(tmp_path) == [], "int32 values are not the bug"
    sink.write(after.cast(SCHEMA_V2))
    sink.commit(sink.prepare(1))
    stored = read_parquet_output(tmp_path / "out")
    assert stored.schema.field("score").type == pa.int32()
    assert check_schema(expected_table(workload, 5), stored).failed
    assert stored.filter(pa.compute.greater_equal(stored["id"], 60))["score"].to_pylist() != \
        after["score"].to_pylist()
    assert len(active(tmp_path)) == 1


def test_non_atomic_commit_renames_one_file_at_a_time(tmp_path, monkeypatch):
    from drivers import mutants

    sink = build("parquet-2pc", "non-atomic-commit", {"output_dir": str(tmp_path / "out")}, tmp_path)
    seen: list[int] = []
    monkeypatch.setattr(mutants.time, "sleep", lambda s: seen.append(len(ids(read_parquet_output(tmp_path / "out")))))
    for offset in range(0, ROWS, 10):  # the in-progress file rolls at 50 rows, between writes
        sink.write(TABLE.slice(offset, 10))
    sink.commit(sink.prepare(1))
    assert seen == [50, 100, ROWS], "a reader between two renames sees part of the checkpoint"
    assert len(active(tmp_path)) == 1


def test_expose_prepared_shows_a_checkpoint_before_its_commit_and_takes_it_back_on_rollback(tmp_path):
    out = tmp_path / "out"
    sink = build("parquet-2pc", "expose-prepared", {"output_dir": str(out)}, tmp_path)
    sink.write(TABLE.slice(0, 60))
    sink.commit(sink.prepare(1))
    sink.write(TABLE.slice(60))
    sink.prepare(2)  # never committed: the coordinator died before persisting checkpoint 2
    assert ids(read_parquet_output(out)) == list(range(ROWS)), "prepared rows visible before any commit"
    restarted = build("parquet-2pc", "expose-prepared", {"output_dir": str(out)}, tmp_path)
    restarted.recover([])  # restored at checkpoint 1, whose manifest is on disk
    assert ids(read_parquet_output(out)) == list(range(60)), "the rollback took the exposed rows back"
    assert [e["what"] for e in active(tmp_path)] == ["prepared files published before the commit"]


def test_lingering_rollback_shows_the_discarded_checkpoint_for_a_moment_then_takes_it_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    sink = build("parquet-2pc", "lingering-rollback", {"output_dir": str(out)}, tmp_path)
    sink.write(TABLE.slice(0, 60))
    sink.commit(sink.prepare(1))
    sink.write(TABLE.slice(60))
    sink.prepare(2)  # never committed: the coordinator died before persisting checkpoint 2
    assert ids(read_parquet_output(out)) == list(range(60))
    restarted = build("parquet-2pc", "lingering-rollback", {"output_dir": str(out)}, tmp_path)
    seen: list[list[int]] = []
    # What a reader sees during the moment: the sleep of the linger, looked into.
    monkeypatch.setattr("drivers.mutants.time.sleep", lambda seconds: seen.append(ids(read_parquet_output(out))))
    restarted.recover([])
    assert seen == [list(range(ROWS))], "the discarded rows were visible during the rollback"
    assert ids(read_parquet_output(out)) == list(range(60)), "and gone after it"
    assert "discarded files" in active(tmp_path)[0]["what"]


def test_orphan_sweep_deletes_the_committed_files_of_its_worker_on_recovery(tmp_path):
    out = tmp_path / "out"
    sink = build("parquet-2pc", "orphan-sweep", {"output_dir": str(out)}, tmp_path)
    sink.write(TABLE.slice(0, 60))
    sink.commit(sink.prepare(1))
    sink.write(TABLE.slice(60))
    handle = sink.prepare(2)  # persisted; the worker dies before committing it
    assert ids(read_parquet_output(out)) == list(range(60))
    restarted = build("parquet-2pc", "orphan-sweep", {"output_dir": str(out)}, tmp_path)
    restarted.recover([handle])
    assert ids(read_parquet_output(out)) == [], "every committed record is gone"
    assert (out / "_manifests").is_dir(), "and the manifests say they are committed"
    assert "committed files" in active(tmp_path)[0]["what"]


def test_skip_fsync_closes_its_files_without_fsync_and_the_sound_sink_fsyncs_each(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr("drivers.parquet_sinks.os.fsync", lambda fd: (synced.append(os.readlink(
        f"/proc/self/fd/{fd}")), real_fsync(fd)))
    out = tmp_path / "out"
    sink = build("parquet-2pc", "skip-fsync", {"output_dir": str(out)}, tmp_path)
    sink.write(TABLE)
    sink.commit(sink.prepare(1))
    assert ids(read_parquet_output(out)) == list(range(ROWS))  # a crash alone loses nothing
    assert not [path for path in synced if ".inprogress-" in path], synced
    assert [e["what"] for e in active(tmp_path)] == ["an in-progress file closed without fsync"]
    sound = load(SINKS["parquet-2pc"].driver).create({"output_dir": str(tmp_path / "sound")}, WorkerContext(
        job_id="job", worker=0, workers=1, run_dir=tmp_path, crash=NoCrashes(), history=None))
    sound.write(TABLE)
    sound.prepare(1)
    assert [path for path in synced if ".inprogress-" in path], "the sound sink fsyncs its in-progress file"


def test_drop_late_writes_nothing(tmp_path):
    sink = build("parquet-2pc", "drop-late", {"output_dir": str(tmp_path / "late")}, tmp_path)
    sink.write(TABLE)
    sink.commit(sink.prepare(1))
    assert ids(read_parquet_output(tmp_path / "late")) == [] and len(active(tmp_path)) == 1


def test_no_txn_check_appends_a_recommitted_delta_checkpoint_again(tmp_path):
    table = str(tmp_path / "t")
    sink = build("delta-2pc", "no-txn-check", {"table": table}, tmp_path)
    sink.write(TABLE)
    handle = sink.prepare(1)
    sink.commit(handle)
    assert active(tmp_path) == [] and ids(read_delta(table)) == list(range(ROWS))
    sink.commit(handle)
    assert ids(read_delta(table)) == sorted(2 * list(range(ROWS)))
    assert "the log has its transaction" in active(tmp_path)[0]["what"]


def test_no_ancestry_check_commits_an_iceberg_checkpoint_twice(tmp_path):
    settings = {"catalog_uri": "", "warehouse": str(tmp_path / "wh"), "table_name": "out"}
    sink = build("iceberg-2pc", "no-ancestry-check", settings, tmp_path)
    sink.write(TABLE)
    handle = sink.prepare(1)
    sink.commit(handle)
    assert active(tmp_path) == []
    sink.commit(handle)
    assert ids(read_iceberg("", tmp_path / "wh", "out")) == sorted(2 * list(range(ROWS)))
    assert "the ancestry has it" in active(tmp_path)[0]["what"]


def test_rollback_on_recover_loses_the_restored_hudi_checkpoint(tmp_path):
    path = tmp_path / "t"
    sink = build("hudi-2pc", "rollback-on-recover", {"table": str(path)}, tmp_path)
    sink.write(TABLE)
    handle = sink.prepare(1)  # persisted by the coordinator, then the worker fails before committing
    restarted = build("hudi-2pc", "rollback-on-recover", {"table": str(path)}, tmp_path)
    restarted.recover([handle])
    assert ids(read_hudi(path)) == [], "the checkpoint's rows are gone for good"
    assert check_loss(TABLE, read_hudi(path), required=True).failed
    assert "rolled back" in active(tmp_path)[0]["what"]


def test_a_correct_sink_loses_nothing_in_the_same_hudi_recovery(tmp_path):
    from drivers.hudi.sink import HudiTwoPhaseSink

    path = tmp_path / "t"
    sink = HudiTwoPhaseSink(path, "job", 0, NoCrashes())
    sink.write(TABLE)
    handle = sink.prepare(1)
    HudiTwoPhaseSink(path, "job", 0, NoCrashes()).recover([handle])
    assert ids(read_hudi(path)) == list(range(ROWS))


@pytest.mark.parametrize("kind", sorted({k for k in SINKS if SINKS[k].mutants}))
def test_every_sink_mutant_is_a_seeded_bug_that_reports_itself(kind):
    from drivers.sdk import SeededBug

    for variant in SINKS[kind].mutants:
        assert issubclass(load(variant.driver), SeededBug), variant.name
