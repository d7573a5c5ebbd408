"""Boundaries and edge cases of the checkers that no other unit test pinned down.

Each test here kills mutants that survived `make mutation` (docs/benchmarks.md, "Mutation
testing"): a `<` that could have been a `<=`, a branch for an empty input or an unknown progress,
a count that could have been anything. Pure unit tests on pyarrow tables and synthetic histories.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers import orphans
from chaos.checkers.duplicates import check_duplicates
from chaos.checkers.late import check_late_events, expected_late
from chaos.checkers.liveness import check_liveness
from chaos.checkers.order import check_key_order
from chaos.checkers.orphans import check_orphans
from chaos.checkers.phantoms import check_phantoms
from chaos.checkers.progress import Window, progress_of, timeline
from chaos.checkers.schema import check_schema
from chaos.checkers.source_acks import check_source_acks
from chaos.checkers.traffic import check_fault_traffic
from chaos.checkers.visibility import check_prefix
from chaos.experiment.models import WorkloadSpec
from chaos.workload.producer import FAILED, INDETERMINATE
from drivers.sdk.records import expected_table


def ids(values: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(values, pa.int64())})


# --- histories ----------------------------------------------------------------------------------


def ev(ts: float, event: str, **fields) -> dict:
    return {"ts": ts, "source": "test", "event": event, **fields}


def checkpoint(ts: float, cid: int, progress: int) -> list[dict]:
    """A checkpoint persisted with `progress` as its only position, and committed at `ts`."""
    return [ev(ts - 0.1, "checkpoint.persisted", checkpoint_id=cid, positions={"0": {"0": progress}}),
            ev(ts, "checkpoint.committed", checkpoint_id=cid)]


def fault(start: float, end: float | None, index: int = 0) -> list[dict]:
    inject = ev(start, "fault.inject", index=index, kind="partition", target="worker-0-kafka")
    return [inject] if end is None else [inject, ev(end, "fault.heal", index=index, kind="partition",
                                                     target="worker-0-kafka")]


READY = ev(0.5, "pipeline.ready")


# --- late events --------------------------------------------------------------------------------


def late_truth(event_times: list[int]) -> pa.Table:
    """One partition, in offset order; ids are the offsets."""
    n = len(event_times)
    return pa.table({"partition": pa.array([0] * n, pa.int32()), "offset": pa.array(range(n), pa.int64()),
                     "id": pa.array(range(n), pa.int64()), "event_time": pa.array(event_times, pa.int64())})


def test_a_record_exactly_the_allowed_lateness_behind_the_watermark_is_on_time():
    # watermark 1000: 900 is exactly 100 ms behind it (on time), 899 is 101 ms behind (late)
    assert expected_late(late_truth([1000, 900, 899]), allowed_ms=100).to_pylist() == [2]


def test_a_source_with_no_records_has_no_late_ones():
    truth = late_truth([])
    assert expected_late(truth, allowed_ms=100).to_pylist() == []
    v = check_late_events(truth, ids([]), ids([]), allowed_ms=100)
    assert v.status == "pass" and v.counts["late"] == 0


def test_a_late_record_left_in_the_main_output_is_misrouted_not_dropped():
    v = check_late_events(late_truth([1000, 800, 1100]), ids([0, 1, 2]), ids([]), allowed_ms=100)
    assert v.status == "fail" and v.examples == [1]
    assert (v.counts["late"], v.counts["late_in_main_output"], v.counts["late_dropped"]) == (1, 1, 0)
    assert "dropped" not in v.summary


def test_the_late_output_counts_each_routed_record_once():
    v = check_late_events(late_truth([1000, 800, 1100]), ids([0, 2]), ids([1, 1]), allowed_ms=100)
    assert v.status == "pass"
    assert v.counts["routed_late"] == 1 and v.counts["on_time_routed_late"] == 0


# --- liveness -----------------------------------------------------------------------------------


def test_a_recovery_that_takes_exactly_the_bound_is_within_it():
    events = [READY, *checkpoint(1.0, 1, 100), *fault(2.0, 4.0), *checkpoint(5.0, 2, 200)]
    v = check_liveness(events, bound_s=1.0)
    assert v.status == "pass" and v.counts["worst_recovery_ms"] == 1000
    assert check_liveness(events, bound_s=0.99).status == "fail"


def test_a_fault_before_anything_was_persisted_recovers_at_the_first_commit():
    # the fault comes before the workload: with no progress to beat, any commit after the heal is progress
    events = [READY, *fault(0.6, 1.0), ev(1.2, "workload.start"), *checkpoint(2.0, 1, 100)]
    v = check_liveness(events, bound_s=5.0)
    assert v.status == "pass"
    assert v.counts == {"faults": 1, "worst_recovery_ms": 1000, "unrecovered": 0}


def test_a_fault_healed_the_moment_the_run_drained_needs_no_progress():
    # the drain at the heal proves the input was committed by then; a later commit is not the recovery
    events = [READY, *checkpoint(1.0, 1, 100), *fault(2.0, 4.0), ev(4.0, "run.drained", seconds=0.1),
              *checkpoint(7.0, 2, 200)]
    v = check_liveness(events, bound_s=1.0)
    assert v.status == "pass" and v.counts["worst_recovery_ms"] == 0


def test_liveness_without_faults_says_so_and_reports_no_recovery_time():
    v = check_liveness([READY, *checkpoint(1.0, 1, 10)], bound_s=1.0)
    assert v.status == "pass" and v.summary == "no faults to recover from"
    assert v.counts == {"faults": 0, "worst_recovery_ms": 0, "unrecovered": 0}
    v = check_liveness([READY, *checkpoint(1.0, 1, 10), *fault(2.0, 3.0), *checkpoint(3.5, 2, 20)], bound_s=1.0)
    assert v.status == "pass" and v.summary.startswith("progress resumed within 1s of every heal")


def test_a_fault_still_active_when_the_history_ends_is_not_judged_by_liveness():
    events = [READY, *checkpoint(1.0, 1, 100), *fault(2.0, None), *checkpoint(3.0, 2, 100)]
    (window,) = timeline(events).faults
    assert (window.end, window.healed) == (3.0, False)
    v = check_liveness(events, bound_s=1.0)
    assert v.status == "pass" and v.counts["unrecovered"] == 0


def test_checkpoints_persisted_but_never_committed_are_no_recovery():
    events = [READY, checkpoint(1.0, 1, 100)[0], *fault(2.0, 4.0), checkpoint(5.0, 2, 200)[0]]
    v = check_liveness(events, bound_s=5.0)
    assert v.status == "fail" and v.counts["unrecovered"] == 1 and v.examples == [0]


# --- progress -----------------------------------------------------------------------------------


def test_progress_of_sums_the_integers_inside_lists():
    assert progress_of({"files": [3, 4], "0": {"0": 5}, "instant": "20261129092244600"}) == 12
    assert progress_of([]) == 0


def test_a_crash_is_a_window_of_one_moment():
    events = [READY, ev(2.5, "crash", process="worker-0", point="sink.commit.after")]
    assert timeline(events).crashes == [Window(0, 2.5, 2.5, "crash of worker-0 at sink.commit.after")]


def test_a_checkpoint_persisted_without_positions_is_progress_zero_not_opaque():
    run = timeline([READY, ev(1.0, "checkpoint.persisted", checkpoint_id=1),
                    ev(1.1, "checkpoint.committed", checkpoint_id=1)])
    assert not run.opaque
    assert run.committed.to_pylist() == [0] and run.commit_known.to_pylist() == [True]


def test_progress_beyond_64_bits_is_compared_exactly():
    # two workers reading the same Iceberg snapshot: two snapshot ids alone overflow an int64
    snapshot = 7_000_000_000_000_000_000

    def iceberg(ts: float, cid: int, files: int) -> list[dict]:
        positions = {str(w): {"snapshot_id": snapshot, "files": {f"f{w}": files}} for w in (0, 1)}
        return [ev(ts - 0.1, "checkpoint.persisted", checkpoint_id=cid, positions=positions),
                ev(ts, "checkpoint.committed", checkpoint_id=cid)]

    events = [READY, *iceberg(1.0, 1, 10), *fault(2.0, 4.0), *iceberg(3.0, 2, 10), *iceberg(5.0, 3, 11)]
    assert timeline(events).committed.to_pylist() == [2 * snapshot + 20, 2 * snapshot + 20, 2 * snapshot + 22]
    v = check_liveness(events, bound_s=5.0)
    assert v.status == "pass" and v.counts["worst_recovery_ms"] == 1000
    assert check_fault_traffic(events).status == "pass"


# --- faults met traffic -------------------------------------------------------------------------


def test_a_fault_that_ends_the_moment_the_pipeline_is_ready_met_it():
    # the pipeline was ready by the fault's end (at it), and input waited: traffic
    events = [ev(0.1, "workload.start"), *fault(2.0, 4.0), ev(4.0, "pipeline.ready"), *checkpoint(5.0, 1, 300),
              *checkpoint(6.0, 2, 1000), ev(6.5, "run.drained", seconds=0.5)]
    assert check_fault_traffic(events).status == "pass"
    late = [e if e["event"] != "pipeline.ready" else {**e, "ts": 4.01} for e in events]
    assert check_fault_traffic(late).status == "inconclusive"


def test_the_pipeline_is_ready_from_its_first_ready_event():
    # the workers rejoin after a restart and the pipeline says it is ready again: the fault still met it
    events = [READY, *checkpoint(1.0, 1, 100), *fault(2.0, 4.0), *checkpoint(3.0, 2, 200),
              ev(6.0, "pipeline.ready"), *checkpoint(7.0, 3, 300)]
    assert timeline(events).ready == 0.5
    assert check_fault_traffic(events).status == "pass"
    # never ready at all: the fault was over before the pipeline was ready
    never = [ev(0.0, "run.start"), *[e for e in events if e["event"] != "pipeline.ready"]]
    assert timeline(never).ready is None
    v = check_fault_traffic(never)
    assert v.status == "inconclusive" and "before the pipeline was ready" in v.summary


def test_a_commit_inside_a_fault_that_began_before_any_commit_is_traffic_whatever_its_progress():
    # the commit's checkpoint has no persist in the history: its progress is unknown, but it committed
    events = [READY, *fault(1.0, 3.0), ev(2.0, "checkpoint.committed", checkpoint_id=1)]
    v = check_fault_traffic(events)
    assert v.status == "pass" and v.counts == {"faults": 1, "faults_without_traffic": 0}


def test_commits_during_a_fault_that_move_nothing_with_nothing_left_are_no_traffic():
    events = [READY, *checkpoint(1.0, 1, 1000), ev(2.0, "workload.end"), *fault(5.0, 7.0),
              *checkpoint(6.0, 2, 1000), ev(7.5, "run.drained", seconds=0.1)]
    v = check_fault_traffic(events)
    assert v.status == "inconclusive" and "made no progress and had nothing left" in v.summary


def test_a_crash_point_met_traffic_even_before_the_pipeline_was_ready():
    # a crash point fires inside a running process: readiness is no question for it
    events = [*checkpoint(1.0, 1, 100), ev(1.5, "crash", process="coordinator", point="coordinator.persist.after"),
              ev(2.0, "pipeline.ready"), *checkpoint(3.0, 2, 200), ev(3.5, "run.drained", seconds=0.5)]
    assert check_fault_traffic(events).status == "pass"


def test_no_faults_counts_no_faults():
    v = check_fault_traffic([READY, *checkpoint(1.0, 1, 10)])
    assert v.status == "pass" and v.counts == {"faults": 0, "faults_without_traffic": 0}


# --- orphans ------------------------------------------------------------------------------------


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_a_directory_that_vanishes_during_the_walk_is_skipped_and_the_walk_goes_on(tmp_path, monkeypatch):
    touch(tmp_path, "gone/part-0.parquet", "kept/.pending-job-w0-c1-0.parquet")
    real = os.scandir

    def scandir(path):
        if Path(path).name == "gone":  # removed between its parent's listing and its own
            raise FileNotFoundError(path)
        return sorted(real(path), key=lambda entry: entry.name == "gone")  # walked first: pushed last

    monkeypatch.setattr(orphans.os, "scandir", scandir)
    v = check_orphans([tmp_path])
    assert v.status == "fail" and v.counts["pending"] == 1


def test_a_symlink_to_another_directory_is_not_followed(tmp_path):
    touch(tmp_path, "elsewhere/.pending-job-w0-c1-0.parquet", "out/part-0.parquet")
    (tmp_path / "out" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert check_orphans([tmp_path / "out"]).status == "pass"


def test_nothing_under_hudi_archived_history_is_staged_work(tmp_path):
    touch(tmp_path, ".hoodie/hoodie.properties", ".hoodie/archived/.commits_.archive.1_1-0-1.tmp",
          ".hoodie/timeline/history/._version_.tmp", ".hoodie/timeline/history/.manifest_1.inprogress")
    v = check_orphans([tmp_path])
    assert v.status == "pass" and v.counts["orphans"] == 0


def test_a_timeline_file_without_an_instant_time_is_judged_by_its_name(tmp_path):
    touch(tmp_path, ".hoodie/hoodie.properties", ".hoodie/rollback.inflight")
    v = check_orphans([tmp_path])
    assert v.status == "fail" and v.counts["orphans"] == v.counts["hudi-inflight"] == 1


def test_the_summary_names_every_orphan_when_there_are_no_more_than_five(tmp_path):
    # the summary is this checker's only example output: orphans are paths, not record ids
    names = [".pending-job-w0-c1-0.parquet", ".pending-job-w1-c1-0.parquet", ".pending-job-w2-c1-0.parquet",
             ".inprogress-job-w0-0.parquet", ".inprogress-job-w1-0.parquet"]
    touch(tmp_path, *names)
    v = check_orphans([tmp_path])
    shown = ", ".join(str(tmp_path / n) for n in sorted(names))
    assert v.summary == f"5 staged files were left behind (3 pending, 2 inprogress): {shown}"
    touch(tmp_path, ".pending-job-w3-c1-0.parquet")
    assert check_orphans([tmp_path]).summary.endswith(" and 1 more")


# --- per-key order, duplicates, prefix ----------------------------------------------------------


def keyed(rows: list[tuple[str | None, int]]) -> pa.Table:
    return pa.table({"id": pa.array([i for _, i in rows], pa.int64()),
                     "key": pa.array([k for k, _ in rows], pa.string())})


def test_records_without_a_key_are_one_key_of_their_own():
    v = check_key_order(keyed([("a", 3), (None, 2), ("a", 4), (None, 1)]), required=True)
    assert v.status == "fail" and v.examples == [1]
    assert v.counts == {"output_records": 4, "keys": 2, "keys_out_of_order": 1, "records_out_of_order": 1}


def test_order_and_duplicates_note_an_allowance_only_when_there_is_one():
    unordered = keyed([("a", 2), ("a", 1)])
    assert "(order is not promised)" in check_key_order(unordered, required=False).summary
    assert "not promised" not in check_key_order(unordered, required=True).summary
    twice = ids([1, 1, 2])
    assert "(allowed by the guarantee)" in check_duplicates(twice, forbidden=False).summary
    assert "allowed" not in check_duplicates(twice, forbidden=True).summary


def test_a_prefix_gap_that_is_not_required_is_info():
    truth = pa.table({"id": pa.array([0, 1, 2], pa.int64()), "partition": pa.array([0, 0, 0], pa.int32()),
                      "offset": pa.array([0, 1, 2], pa.int64())})
    v = check_prefix(ids([0, 2]), truth, required=False)
    assert v.status == "info" and not v.failed
    assert v.counts == {"partitions": 1, "partitions_with_gaps": 1, "gap_records": 1} and v.examples == [1]


# --- source acks, phantoms ----------------------------------------------------------------------


def test_a_run_with_no_acked_produce_counts_none():
    outcomes = pa.table({"id": pa.array([0, 1], pa.int64()), "status": pa.array([INDETERMINATE, FAILED])})
    v = check_source_acks(outcomes, ids([0]))
    assert v.status == "pass"
    assert v.counts == {"acked": 0, "acked_missing": 0, "indeterminate_landed": 1, "indeterminate_missing": 0,
                        "failed_landed": 0}


def test_a_null_payload_or_checksum_is_corruption():
    expected = expected_table(WorkloadSpec(records=10, rate=100, payload_size=16), seed=7)
    rows = expected.select(["id", "payload", "checksum"]).to_pylist()
    rows[3]["payload"] = None
    rows[6]["checksum"] = None
    output = pa.Table.from_pylist(rows, schema=expected.select(["id", "payload", "checksum"]).schema)
    v = check_phantoms(expected, output)
    assert v.status == "fail"
    assert v.counts == {"phantoms": 0, "corrupted": 2} and v.examples == [3, 6]


# --- schema compatibility -----------------------------------------------------------------------

SCHEMA_CHANGE = WorkloadSpec(records=200, rate=100, schema_change_at=120)


def with_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def test_schema_counts_every_column_and_the_records_written_after_the_change():
    expected = expected_table(SCHEMA_CHANGE, 3)
    v = check_schema(expected, expected.slice(10))
    assert v.status == "pass"
    assert v.counts == {"columns": 3, "missing_columns": 0, "wrong_score": 0, "wrong_tag": 0, "wrong_region": 0,
                        "wrong_records": 0, "after_change": 80}
    before = check_schema(expected, expected.slice(0, 100))
    assert before.status == "pass" and before.counts["after_change"] == 0


def test_schema_an_empty_output_has_no_changed_values():
    expected = expected_table(SCHEMA_CHANGE, 3)
    v = check_schema(expected, expected.slice(0, 0))
    assert v.status == "pass" and v.counts["wrong_records"] == 0 and v.counts["after_change"] == 0


def test_schema_leaves_records_the_source_never_produced_to_the_phantoms_checker():
    expected = expected_table(SCHEMA_CHANGE, 3)
    phantom = pa.Table.from_pylist([{**expected.slice(150, 1).to_pylist()[0], "id": 10_000}], schema=expected.schema)
    v = check_schema(expected, pa.concat_tables([expected, phantom]))
    assert v.status == "pass" and v.counts["wrong_records"] == 0


def test_schema_a_value_lost_to_null_is_a_changed_value():
    expected = expected_table(SCHEMA_CHANGE, 3)
    regions = expected["region"].to_pylist()
    regions[150] = None
    v = check_schema(expected, with_column(expected, "region", pa.array(regions, pa.string())))
    assert v.status == "fail" and v.examples == [150] and v.counts["wrong_region"] == 1
    assert v.summary == "1 records have changed values"  # no column is missing


def test_schema_a_column_the_output_holds_as_text_is_compared_by_value():
    expected = expected_table(SCHEMA_CHANGE, 3)
    v = check_schema(expected, with_column(expected, "score", pc.cast(expected["score"], pa.string())))
    assert v.status == "pass" and v.counts["wrong_score"] == 0


def test_schema_a_value_the_final_type_cannot_hold_is_a_changed_value_not_a_crash():
    expected = expected_table(SCHEMA_CHANGE, 3)
    scores = [float(s) if s is not None else None for s in expected["score"].to_pylist()]
    scores[130] = float("nan")  # a sink that lost the value on its way through floating point
    v = check_schema(expected, with_column(expected, "score", pa.array(scores, pa.float64())))
    assert v.status == "fail" and v.examples == [130] and v.counts["wrong_score"] == 1


def test_a_commit_of_unknown_progress_inside_a_fault_after_a_known_one_is_judged_not_a_crash():
    # checkpoint 1's progress is known before the fault; checkpoint 2 commits inside it with no persist
    # on record, so whether it moved is unknown: the input left waiting decides, and nothing raises.
    events = [READY, *checkpoint(1.0, 1, 100), *fault(2.0, 4.0), ev(3.0, "checkpoint.committed", checkpoint_id=2),
              *checkpoint(5.0, 3, 300)]
    assert check_fault_traffic(events).status == "pass"  # 100 was committed then, 300 in the end
    quiet = [READY, *checkpoint(1.0, 1, 100), *fault(2.0, 4.0), ev(3.0, "checkpoint.committed", checkpoint_id=2)]
    v = check_fault_traffic(quiet)
    assert v.status == "inconclusive" and "made no progress" in v.summary
