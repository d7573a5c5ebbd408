"""Atomic visibility on the lakehouse two-phase sinks, without services.

Small real tables are written in tmp_path by the real Delta, Iceberg (SQLite catalog) and Hudi
sinks, driven through prepare and commit with a crash hook that never fires. Then:
* the committed units derived from each table's own metadata (the sinks' harness sides in `chaos/sides/`) must be
  exactly what each worker's commit of each checkpoint wrote, and a prepared but uncommitted
  checkpoint must be in none of them;
* the visible-ids readers (the same sides) must see exactly the committed ids, and
  nothing while the table does not exist;
* the `non-atomic-delta-commit` mutant must be caught: an observation taken between its two Delta
  commits holds part of one unit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pytest
from pydantic import ValidationError

from chaos.checkers.visibility import check_atomic_visibility
from chaos.experiment.models import PipelineSpec, WorkloadSpec
from chaos.sides.delta import DeltaSnapshotIds, delta_committed_units
from chaos.sides.hudi import HudiSnapshotIds, hudi_committed_units
from chaos.sides.iceberg import IcebergSnapshotIds, iceberg_committed_units
from chaos.sides.visibility import VisibilityProbe, unit_id
from drivers import mutants
from drivers.delta.sinks import DeltaTwoPhaseSink
from drivers.hudi.sink import HudiTwoPhaseSink
from drivers.iceberg.sinks import IcebergTwoPhaseSink
from drivers.mutants import NonAtomicDeltaSink
from drivers.runtime.config import JobConfig
from drivers.runtime.factory import create_sink
from drivers.sdk.crashpoints import NoCrashes
from drivers.sdk.records import expected_table

ROWS = 120
TABLE = expected_table(WorkloadSpec(records=ROWS, rate=50, keys=5, payload_size=16), seed=11)
JOB = "job-1"


def ids(rows: pa.Table) -> set[int]:
    return set(rows.column("id").to_pylist())


def units_of(table: pa.Table) -> dict[int, set[int]]:
    """{unit: ids} from a (checkpoint_id, id) table, asserting no id is counted twice in a unit."""
    found: dict[int, list[int]] = {}
    for unit, i in zip(table.column("checkpoint_id").to_pylist(), table.column("id").to_pylist()):
        found.setdefault(unit, []).append(i)
    assert all(len(v) == len(set(v)) for v in found.values())
    return {unit: set(v) for unit, v in found.items()}


def drive(make: Callable[[int], Any]) -> tuple[dict[int, set[int]], set[int]]:
    """Two workers, two committed checkpoints each (several files apiece), then a third checkpoint
    prepared but never committed. Returns {unit: ids} of the commits, and the uncommitted ids."""
    sinks = [make(0), make(1)]
    expected: dict[int, set[int]] = {}
    part = ROWS // 6
    for checkpoint in (1, 2):
        for worker, sink in enumerate(sinks):
            rows = TABLE.slice(((checkpoint - 1) * 2 + worker) * part, part)
            sink.write(rows)
            sink.commit(sink.prepare(checkpoint))
            expected[unit_id(checkpoint, worker)] = ids(rows)
    pending = TABLE.slice(4 * part, part)
    sinks[0].write(pending)
    sinks[0].prepare(3)
    return expected, ids(pending)


def committed(expected: dict[int, set[int]]) -> set[int]:
    return set().union(*expected.values())


# -- Delta -----------------------------------------------------------------------------------------
def test_delta_units_come_from_the_logs_txn_and_add_actions(tmp_path: Path) -> None:
    uri = str(tmp_path / "delta")
    visible = DeltaSnapshotIds(uri)
    assert visible().to_pylist() == []  # no table yet
    expected, pending = drive(lambda w: DeltaTwoPhaseSink(uri, JOB, w, NoCrashes(), max_file_rows=7))

    assert units_of(delta_committed_units(uri)) == expected
    seen = visible()
    assert set(seen.to_pylist()) == committed(expected) and len(seen) == len(committed(expected))
    assert not pending & set(seen.to_pylist())
    assert visible() is seen  # same version: no read, the same array


def test_delta_probe_catches_the_non_atomic_delta_commit_mutant(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    uri = str(tmp_path / "delta")
    probe = VisibilityProbe(DeltaSnapshotIds(uri))
    # the reader polls during the mutant's pause between its two Delta commits
    monkeypatch.setattr(mutants.time, "sleep", lambda seconds: probe.poll())
    sink = NonAtomicDeltaSink(uri, JOB, 0, NoCrashes())
    sink.write(TABLE.slice(0, 100))
    sink.commit(sink.prepare(1))  # two files of 50 rows: one per Delta commit
    probe.poll()

    units = delta_committed_units(uri)
    assert units_of(units) == {unit_id(1, 0): set(range(100))}  # both commits make up the one unit
    assert [len(o["ids"]) for o in probe.observations] == [50, 100]
    verdict = check_atomic_visibility(probe.observations, units, read_errors=probe.errors)
    assert verdict.status == "fail"
    assert verdict.counts["partial_observations"] == 1 and verdict.counts["read_errors"] == 0


def test_the_correct_delta_sink_passes_the_same_check(tmp_path: Path) -> None:
    uri = str(tmp_path / "delta")
    probe = VisibilityProbe(DeltaSnapshotIds(uri))
    sink = DeltaTwoPhaseSink(uri, JOB, 0, NoCrashes(), max_file_rows=50)
    for checkpoint in (1, 2):
        probe.poll()
        sink.write(TABLE.slice((checkpoint - 1) * 60, 60))
        sink.commit(sink.prepare(checkpoint))
    probe.poll()
    verdict = check_atomic_visibility(probe.observations, delta_committed_units(uri), read_errors=probe.errors)
    assert verdict.status == "pass" and verdict.counts["commits"] == 2


# -- Iceberg ---------------------------------------------------------------------------------------
def test_iceberg_units_come_from_snapshot_summaries_and_added_files(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    visible = IcebergSnapshotIds("", warehouse, "output")
    try:
        assert visible().to_pylist() == []  # no table yet
        expected, pending = drive(lambda w: IcebergTwoPhaseSink("", warehouse, "output", JOB, w, NoCrashes(),
                                                                max_file_rows=7))
        assert units_of(iceberg_committed_units("", warehouse, "output")) == expected
        seen = visible()
        assert set(seen.to_pylist()) == committed(expected) and len(seen) == len(committed(expected))
        assert not pending & set(seen.to_pylist())
        assert visible() is seen  # same snapshot: no read, the same array
    finally:
        visible.close()


# -- Hudi ------------------------------------------------------------------------------------------
def test_hudi_units_come_from_the_completed_instants_of_the_timeline(tmp_path: Path) -> None:
    path = tmp_path / "hudi"
    visible = HudiSnapshotIds(path)
    assert visible().to_pylist() == []  # no table yet
    expected, pending = drive(lambda w: HudiTwoPhaseSink(path, JOB, w, NoCrashes(), max_file_rows=7))

    assert units_of(hudi_committed_units(path)) == expected  # the pending instant is no unit
    seen = visible()
    assert set(seen.to_pylist()) == committed(expected) and len(seen) == len(committed(expected))
    assert not pending & set(seen.to_pylist())


# -- the probe, and selecting the mutant -------------------------------------------------------------
def test_the_probe_counts_failed_reads_and_a_probe_that_never_read_proves_nothing() -> None:
    def broken() -> pa.Array:
        raise OSError("catalog unreachable")

    probe = VisibilityProbe(broken)
    probe.poll()
    probe.poll()
    assert probe.observations == [] and probe.errors == 2 and "catalog unreachable" in probe.last_error
    verdict = check_atomic_visibility(probe.observations, {1: {1, 2}}, read_errors=probe.errors)
    assert verdict.status == "inconclusive" and verdict.counts["read_errors"] == 2
    assert "2 polls failed" in verdict.summary


def test_the_mutant_is_a_delta_2pc_variant_built_by_the_factory(tmp_path: Path) -> None:
    assert PipelineSpec(source="delta-batch", sink="delta-2pc", profile="distributed-durable",
                        mutant="non-atomic-delta-commit").mutant == "non-atomic-delta-commit"
    with pytest.raises(ValidationError, match="variant of the delta-2pc sink"):
        PipelineSpec(source="parquet-batch", sink="parquet-2pc", profile="distributed-durable",
                     mutant="non-atomic-delta-commit")

    def sink(mutant: str | None) -> object:
        config = JobConfig(job_id=JOB, run_dir=str(tmp_path), workers=1, checkpoint_interval=1.0,
                           profile="distributed-durable", worker_coordinator_port=1,
                           source="delta-batch", sink="delta-2pc", mutant=mutant,
                           sink_settings={"table": str(tmp_path / "t")})
        return create_sink(config, 0, NoCrashes(), source=None)  # type: ignore[arg-type]

    built = sink("non-atomic-delta-commit")
    assert type(built) is NonAtomicDeltaSink and built.max_file_rows == 50
    assert type(sink(None)) is DeltaTwoPhaseSink
