"""Per-key order, liveness, orphans, atomic visibility and prefix on synthetic histories.

Each checker fails on a bad history and passes a good one, and runs on ~200k rows (no timing
assertion: only that it completes with the right verdict).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.hanging import hanging_transactions
from chaos.checkers.liveness import check_liveness
from chaos.checkers.order import check_key_order
from chaos.checkers.orphans import STAGED, check_orphans
from chaos.checkers.progress import progress_of
from chaos.checkers.traffic import check_fault_traffic
from chaos.checkers.visibility import check_atomic_visibility, check_prefix
from drivers.sdk.events import Event

BIG = 200_000


# --- per-key order ------------------------------------------------------------------------------


def ordered(rows: list[tuple[str, int]], chunks: int = 1) -> pa.Table:
    """Output rows in commit order, optionally split into record batches like a multi-file read."""
    table = pa.table({"id": pa.array([i for _, i in rows], pa.int64()),
                      "key": pa.array([k for k, _ in rows], pa.string()),
                      "event_time": pa.array([1000 + i for _, i in rows], pa.int64())})
    if chunks == 1 or not rows:
        return table
    step = -(-len(rows) // chunks)
    return pa.concat_tables([table.slice(i, step) for i in range(0, len(rows), step)])


def test_order_fails_on_inversions_and_reports_smallest_late_ids():
    rows = [("a", 0), ("b", 3), ("a", 2), ("c", 7), ("a", 1),  # a: 1 arrives after 2
            ("b", 5), ("b", 4), ("b", 6), ("c", 8), ("b", 10), ("b", 9)]  # b: 4 after 5, 9 after 10
    v = check_key_order(ordered(rows, chunks=3), required=True)
    assert v.invariant == "per-key-order"
    assert v.status == "fail" and v.failed
    assert v.counts == {"output_records": 11, "keys": 3, "keys_out_of_order": 2, "records_out_of_order": 3}
    assert v.examples == [1, 4, 9]


def test_order_ignores_replayed_duplicates():
    # at least once: after a crash the sink re-delivers 2 and 3 of key a, then carries on
    rows = [("a", 0), ("b", 1), ("a", 2), ("a", 3), ("b", 4), ("a", 2), ("a", 3), ("b", 4), ("a", 5), ("b", 6)]
    v = check_key_order(ordered(rows), required=True)
    assert v.status == "pass"
    assert v.counts == {"output_records": 10, "keys": 2, "keys_out_of_order": 0, "records_out_of_order": 0}
    assert v.examples == []


def test_order_a_new_id_after_a_replay_is_still_checked():
    rows = [("a", 1), ("a", 4), ("a", 1), ("a", 3)]  # 1 is a replay, 3 is new and late
    v = check_key_order(ordered(rows), required=True)
    assert v.status == "fail"
    assert v.examples == [3]


def test_order_not_required_is_info():
    v = check_key_order(ordered([("a", 2), ("a", 1)]), required=False)
    assert v.status == "info" and not v.failed
    assert v.counts["keys_out_of_order"] == 1


def test_order_on_empty_output_passes():
    v = check_key_order(ordered([]), required=True)
    assert v.status == "pass"
    assert v.counts == {"output_records": 0, "keys": 0, "keys_out_of_order": 0, "records_out_of_order": 0}


def test_order_interleaved_keys_are_independent():
    # key b's ids are all below key a's, interleaved: no inversion within either key
    v = check_key_order(ordered([("a", 100), ("b", 1), ("a", 101), ("b", 2)]), required=True)
    assert v.status == "pass"


def test_order_on_200k_rows():
    rows = [(f"k{i % 97}", i) for i in range(BIG)]
    replay = rows[150_000:160_000]
    good = ordered(rows[:160_000] + replay + rows[160_000:], chunks=7)
    assert check_key_order(good, required=True).status == "pass"
    rows[1000], rows[1000 + 97] = rows[1000 + 97], rows[1000]  # swap two records of the same key
    v = check_key_order(ordered(rows, chunks=7), required=True)
    assert v.status == "fail"
    assert v.counts["keys_out_of_order"] == 1 and v.counts["records_out_of_order"] == 1
    assert v.examples == [1000]


# --- liveness and fault traffic --------------------------------------------------------------------


class H:
    """A synthetic history: `H().at(1.0, "fault.inject", index=0)...events`."""

    def __init__(self, ready: float | None = 0.5) -> None:
        self.events: list[dict] = [{"ts": 0.0, "source": "harness", "event": "run.start"}]
        if ready is not None:
            self.events.append({"ts": ready, "source": "harness", "event": "pipeline.ready"})
        self._next = 1

    def at(self, ts: float, event: str, **fields) -> "H":
        self.events.append({"ts": ts, "source": "test", "event": event, **fields})
        return self

    def checkpoint(self, ts: float, positions: dict) -> "H":
        cid = self._next
        self._next += 1
        return self.at(ts, "checkpoint.persisted", checkpoint_id=cid, handles=1, positions=positions) \
            .at(ts + 0.02, "checkpoint.committed", checkpoint_id=cid)

    def fault(self, index: int, start: float, end: float | None) -> "H":
        self.at(start, "fault.inject", index=index, kind="partition", target="worker-0-kafka")
        if end is not None:
            self.at(end, "fault.heal", index=index, kind="partition", target="worker-0-kafka")
        return self


def positions(n: int) -> dict:
    return {"0": {"0": n // 2, "2": n - n // 2}, "1": {}}


def recovering(heal_to_progress: float) -> H:
    h = H().at(0.1, "workload.start", records=1000).checkpoint(1.0, positions(100))
    h.fault(0, 2.0, 4.0).checkpoint(3.0, positions(100))  # stalled during the fault
    h.checkpoint(4.0 + heal_to_progress - 0.02, positions(300))
    return h.at(8.0, "workload.end", produced=1000).at(9.0, "run.drained", seconds=1.0)


def test_progress_of_sums_integer_leaves():
    assert progress_of({"0": {"0": 391, "2": 557}, "1": {"1": 462, "3": 142}}) == 1552
    assert progress_of({"0": {}, "1": {}}) == 0
    assert progress_of({"0": {"instant": "20261129092244600", "splits": {"a": 400, "b": 0}}}) == 400
    assert progress_of({"0": {"instant": "20261129092244600"}}) is None
    assert progress_of({"0": {"next": True}}) is None


def test_liveness_passes_when_progress_resumes_within_the_bound():
    v = check_liveness(recovering(1.5).events, bound_s=5.0)
    assert v.invariant == "liveness"
    assert v.status == "pass"
    assert v.counts == {"faults": 1, "worst_recovery_ms": 1500, "unrecovered": 0}


def test_liveness_fails_when_recovery_is_slower_than_the_bound():
    v = check_liveness(recovering(7.5).events, bound_s=5.0)
    assert v.status == "fail"
    assert v.counts["worst_recovery_ms"] == 7500
    assert "longer than 5s" in v.summary
    assert v.examples == [0]


def test_liveness_fails_when_progress_never_resumes():
    h = H().at(0.1, "workload.start").checkpoint(1.0, positions(100)).fault(3, 2.0, 4.0)
    for t in (5.0, 6.0, 7.0):  # checkpoints keep committing, but the positions never move
        h.checkpoint(t, positions(100))
    h.at(8.0, "workload.end").at(40.0, "run.drain_timeout", seconds=30)
    v = check_liveness(h.events, bound_s=5.0)
    assert v.status == "fail"
    assert v.counts["unrecovered"] == 1
    assert "never followed by progress" in v.summary
    assert v.examples == [3]


def test_liveness_needs_no_progress_once_the_input_is_fully_committed():
    # everything was committed during the fault; the run drained afterwards with no further progress
    h = H().at(0.1, "workload.start").checkpoint(1.0, positions(100)).fault(0, 2.0, 6.0)
    h.checkpoint(3.0, positions(1000)).at(4.0, "workload.end").checkpoint(7.0, positions(1000))
    h.at(7.5, "run.drained", seconds=0.2)
    v = check_liveness(h.events, bound_s=0.5)
    assert v.status == "pass"
    assert v.counts["worst_recovery_ms"] == 0


def test_liveness_a_fault_healed_after_the_drain_needs_no_progress():
    h = H().at(0.1, "workload.start").checkpoint(1.0, positions(1000)).at(2.0, "workload.end")
    h.at(2.5, "run.drained", seconds=0.5).fault(0, 1.5, 3.0)
    assert check_liveness(h.events, bound_s=0.5).status == "pass"


def test_liveness_opaque_positions_count_any_commit_after_the_heal():
    opaque = {"0": {"instant": "20261129092244600"}}
    h = H().checkpoint(1.0, opaque).fault(0, 2.0, 4.0).checkpoint(3.0, opaque).checkpoint(4.98, opaque)
    v = check_liveness(h.events, bound_s=5.0)
    assert v.status == "pass"
    assert v.counts["worst_recovery_ms"] == 1000


def test_liveness_without_faults_passes():
    v = check_liveness(H().checkpoint(1.0, positions(10)).events, bound_s=1.0)
    assert v.status == "pass"
    assert v.counts["faults"] == 0


def test_liveness_on_200k_events():
    h = H().at(0.0, "workload.start")
    for n in range(BIG // 2):  # 100k checkpoints, 200k events; progress stalls for every fault
        t = 1.0 + n * 0.01
        stalled = any(f * 100 <= t < f * 100 + 20 for f in range(1, 10))
        h.checkpoint(t, positions(n if not stalled else int(t // 100) * 10_000))
    for f in range(1, 10):
        h.fault(f, f * 100.0, f * 100.0 + 10.0)
    h.at(1001.0, "workload.end").at(1002.0, "run.drained", seconds=1.0)
    assert check_liveness(h.events, bound_s=15.0).status == "pass"
    v = check_liveness(h.events, bound_s=5.0)
    assert v.status == "fail"
    assert v.counts["faults"] == 9
    assert 9_900 <= v.counts["worst_recovery_ms"] <= 10_100
    assert v.examples == [1, 2, 3, 4, 5]


# --- orphans ------------------------------------------------------------------------------------


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def clean_lake(root: Path) -> list[Path]:
    parquet, delta, hudi = root / "parquet", root / "delta", root / "hudi"
    touch(parquet, "part-job-w0-c1-0.parquet", "_manifests/job/c1-w0.json")
    touch(delta, "part-job-w0-c1-0.parquet", "_delta_log/00000000000000000000.json")
    touch(hudi, "f1_0-0-0_20261129092245290.parquet", ".hoodie_partition_metadata", ".hoodie/hoodie.properties",
          ".hoodie/20261129092245290.commit",
          # Hudi may keep a completed instant's requested and inflight files: not staged
          ".hoodie/20261129092245291.commit.requested", ".hoodie/20261129092245291.inflight",
          ".hoodie/20261129092245291.commit",
          ".hoodie/archived/20261129092240000.commit.requested",  # archived history is not staged work
          # Hudi 1.x timeline: completed as {t}_{completion}.{action}
          ".hoodie/timeline/20261129092246000.deltacommit.requested",
          ".hoodie/timeline/20261129092246000.deltacommit.inflight",
          ".hoodie/timeline/20261129092246000_20261129092246100.deltacommit")
    (hudi / ".hoodie" / ".temp").mkdir()
    (hudi / ".hoodie" / ".aux").mkdir()
    return [parquet, delta, hudi]


def test_orphans_pass_on_a_clean_output(tmp_path):
    v = check_orphans(clean_lake(tmp_path) + [tmp_path / "missing"])
    assert v.invariant == "no-orphans"
    assert v.status == "pass"
    assert v.counts["orphans"] == 0
    assert set(v.counts) == {"orphans"} | {kind for kind, _ in STAGED}


def test_orphans_fail_with_counts_per_kind(tmp_path):
    parquet, delta, hudi = clean_lake(tmp_path)
    touch(parquet, ".pending-job-w0-c2-0a1b2c3d.parquet", ".pending-job-w1-c2-0a1b2c3e.parquet",
          ".inprogress-job-w0-0123456789abcdef0123456789abcdef.parquet")
    touch(delta, ".part-job-w0-c2-0.parquet.inprogress", "_delta_log/_commit_5b1e.json.tmp")
    touch(hudi, ".f2_0-0-0_20261129092249000.parquet.inprogress",
          ".hoodie/20261129092249000.commit.requested", ".hoodie/20261129092249000.inflight",
          ".hoodie/.chaos-job-w0-0123456789abcdef0123456789abcdef.tmp",
          ".hoodie/.temp/20261129092249000/f2_0-0-0_20261129092249000.parquet.marker.CREATE",
          ".hoodie/timeline/20261129092250000.deltacommit.requested")
    v = check_orphans([parquet, delta, hudi])
    assert v.status == "fail" and v.failed
    assert v.counts == {"orphans": 11, "pending": 2, "inprogress": 1, "part-inprogress": 1, "hidden-inprogress": 1,
                        "hidden-tmp": 1, "delta-commit-tmp": 1, "hudi-inflight": 1, "hudi-requested": 2,
                        "hudi-marker": 1}
    assert "11 staged files" in v.summary and "2 pending" in v.summary and "and 6 more" in v.summary
    assert v.examples == []


def test_orphans_on_many_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for n in range(10_000):
        (out / f"part-{n:05d}.parquet").write_bytes(b"")
    assert check_orphans([out]).status == "pass"
    (out / ".pending-job-w0-c9-00000000.parquet").write_bytes(b"")
    v = check_orphans([out])
    assert v.status == "fail" and v.counts["orphans"] == 1 and v.counts["pending"] == 1


# --- atomic visibility --------------------------------------------------------------------------

CHECKPOINTS = {1: set(range(0, 10)), 2: set(range(10, 20)), 3: set(range(20, 25))}


def obs(ts: float, ids) -> dict:
    return {"ts": ts, "ids": pa.array(sorted(ids), pa.int64())}


def test_visibility_passes_when_every_observation_sees_whole_commits():
    observations = [obs(0.0, []), obs(1.0, range(10)), obs(2.0, range(20)), obs(3.0, range(25)),
                    obs(4.0, list(range(20, 25)) + [999])]  # 999 belongs to no commit: not this checker's
    v = check_atomic_visibility(observations, CHECKPOINTS)
    assert v.invariant == "atomic-visibility"
    assert v.status == "pass"
    assert v.counts == {"observations": 5, "partial_observations": 0, "commits": 3, "partial_commits": 0,
                        "ambiguous_ids": 0}


def test_visibility_fails_on_a_partial_commit_and_names_the_first_missing_ids():
    observations = [obs(1.0, range(10)),
                    obs(2.0, list(range(10)) + list(range(10, 15))),  # half of checkpoint 2
                    obs(3.0, [0, 1, 2, 4]),  # checkpoint 1 torn: 3 is the first missing
                    obs(4.0, range(25))]
    v = check_atomic_visibility(observations, CHECKPOINTS)
    assert v.status == "fail" and v.failed
    assert v.counts == {"observations": 4, "partial_observations": 2, "commits": 3, "partial_commits": 2,
                        "ambiguous_ids": 0}
    assert v.examples == [3, 15]


def test_visibility_accepts_a_checkpoint_table_and_chunked_ids():
    table = pa.table({"checkpoint_id": pa.array([1] * 10 + [2] * 10, pa.int64()),
                      "id": pa.array(list(range(20)), pa.int64())})
    ids = pa.chunked_array([pa.array([10, 11], pa.int64()), pa.array([12], pa.int64())])
    v = check_atomic_visibility([{"ts": 1.0, "ids": ids}, {"ts": 2.0, "ids": set(range(20))}], table)
    assert v.status == "fail"
    assert v.counts["partial_observations"] == 1
    assert v.examples == [13]


def test_visibility_ignores_ids_that_several_checkpoints_carry():
    # at least once: checkpoint 2 replays 8 and 9 of checkpoint 1
    checkpoints = {1: set(range(10)), 2: {8, 9} | set(range(10, 20))}
    v = check_atomic_visibility([obs(1.0, range(10)), obs(2.0, range(20))], checkpoints)
    assert v.status == "pass"
    assert v.counts["ambiguous_ids"] == 2


def test_visibility_on_no_observation_or_only_empty_ones_is_inconclusive():
    for observations in ([], [obs(1.0, []), obs(2.0, [])]):
        v = check_atomic_visibility(observations, CHECKPOINTS, read_errors=3)
        assert v.status == "inconclusive" and "saw any committed data" in v.summary


def test_visibility_on_one_good_poll_among_failed_ones_is_inconclusive():
    v = check_atomic_visibility([obs(1.0, range(25))], CHECKPOINTS, read_errors=99)
    assert v.status == "inconclusive" and "never saw a commit land" in v.summary


def test_visibility_needs_a_commit_seen_landing_after_a_fault_began_when_there_were_faults():
    observations = [obs(1.0, range(10)), obs(2.0, range(20)), obs(9.0, range(25))]
    assert check_atomic_visibility(observations, CHECKPOINTS, fault_windows=[(1.5, 2.5)]).status == "pass"
    assert check_atomic_visibility(observations, CHECKPOINTS, fault_windows=[(9.0, 9.5)]).status == "pass"
    v = check_atomic_visibility(observations, CHECKPOINTS, fault_windows=[(9.01, 9.5)])
    assert v.status == "inconclusive" and "after the first fault began" in v.summary


def test_visibility_counts_the_first_commit_after_a_disk_fault_that_held_every_commit_back():
    """Nothing can commit while the sink's disk fails, so the reader sees the output go from empty
    to everything at the recovery commit: that is a commit seen landing, after the fault."""
    observations = [obs(0.5, []), obs(2.0, []), obs(4.0, range(25)), obs(5.0, range(25))]
    v = check_atomic_visibility(observations, CHECKPOINTS, fault_windows=[(1.0, 3.0)])
    assert v.status == "pass" and v.counts["observations"] == 4


def test_visibility_catches_a_commit_missing_exactly_one_id():
    v = check_atomic_visibility([obs(1.0, range(9)), obs(2.0, range(25))], CHECKPOINTS)
    assert v.status == "fail" and v.examples == [9]


def test_visibility_on_200k_ids():
    checkpoints = pa.table({"checkpoint_id": pa.array([i // 1000 for i in range(BIG)], pa.int64()),
                            "id": pa.array(range(BIG), pa.int64())})
    observations = [{"ts": float(n), "ids": pa.array(range(n * 10_000), pa.int64())} for n in range(21)]
    assert check_atomic_visibility(observations, checkpoints).status == "pass"
    observations[7] = {"ts": 7.0, "ids": pa.array(range(70_500), pa.int64())}  # half of checkpoint 70
    v = check_atomic_visibility(observations, checkpoints)
    assert v.status == "fail"
    assert v.counts["partial_observations"] == 1 and v.counts["partial_commits"] == 1
    assert v.examples == [70_500]


# --- prefix -------------------------------------------------------------------------------------


def topic(parts: dict[int, list[int]], stride: int = 1000) -> pa.Table:
    """Ground truth: partition -> offsets; ids are partition * stride + offset."""
    rows = [(p, o, p * stride + o) for p, offsets in parts.items() for o in offsets]
    return pa.table({"id": pa.array([r[2] for r in rows], pa.int64()),
                     "partition": pa.array([r[0] for r in rows], pa.int32()),
                     "offset": pa.array([r[1] for r in rows], pa.int64())})


def out(ids) -> pa.Table:
    return pa.table({"id": pa.array(list(ids), pa.int64())})


def test_prefix_passes_on_per_partition_prefixes():
    # transaction markers leave offset gaps (2, 5 in partition 0): they are not holes
    truth = topic({0: [0, 1, 3, 4, 6, 7], 1: [0, 1, 2, 3], 2: [0, 1]})
    v = check_prefix(out([0, 1, 3, 4, 1000, 1001, 1002, 1001]), truth)  # partition 2 not read yet
    assert v.invariant == "prefix"
    assert v.status == "pass"
    assert v.counts == {"partitions": 3, "partitions_with_gaps": 0, "gap_records": 0}


def test_prefix_fails_on_a_gap_and_reports_the_missing_ids():
    truth = topic({0: [0, 1, 2, 3], 1: [0, 1, 2, 3, 4], 2: [0, 1]})
    v = check_prefix(out([0, 1, 2, 3, 1000, 1003, 1004, 2001]), truth)
    assert v.status == "fail" and v.failed
    assert v.counts == {"partitions": 3, "partitions_with_gaps": 2, "gap_records": 3}
    assert v.examples == [1001, 1002, 2000]


def test_prefix_on_200k_records():
    truth = topic({p: list(range(BIG // 4)) for p in range(4)}, stride=1_000_000)
    ids = truth.filter(pc.less(truth["offset"], 40_000))["id"]
    assert check_prefix(out(ids.to_pylist()), truth).status == "pass"
    v = check_prefix(out(i for i in ids.to_pylist() if i != 3_012_345), truth)
    assert v.status == "fail"
    assert v.counts["partitions_with_gaps"] == 1
    assert v.examples == [3_012_345]


def test_a_fault_after_everything_was_committed_is_inconclusive_and_named():
    # the workload was over, the input fully committed, and nothing moved while the fault was active
    h = H().at(0.1, "workload.start").checkpoint(1.0, positions(1000)).at(2.0, "workload.end")
    h.fault(0, 5.0, 7.0).at(7.5, "run.drained", seconds=0.1)
    v = check_fault_traffic(h.events)
    assert v.status == "inconclusive" and v.invariant == "faults-met-traffic"
    assert "faults[0] (partition worker-0-kafka): the pipeline made no progress and had nothing left" in v.summary
    assert v.counts == {"faults": 1, "faults_without_traffic": 1} and v.examples == [0]


def test_a_fault_over_before_the_pipeline_was_ready_is_inconclusive_though_the_producer_ran():
    # workers took 5 s to join; a partition from 2 s to 4.5 s overlapped only the producer
    h = H(ready=5.0).at(0.1, "workload.start").fault(0, 2.0, 4.5).checkpoint(6.0, positions(300))
    h.checkpoint(7.0, positions(1000)).at(8.0, "workload.end").at(8.5, "run.drained", seconds=0.5)
    v = check_fault_traffic(h.events)
    assert v.status == "inconclusive" and "before the pipeline was ready" in v.summary


def test_a_fault_that_holds_back_a_pipeline_with_input_waiting_met_traffic():
    # nothing moved during the fault, but input was waiting: the fault bit
    h = recovering(1.5)
    assert check_fault_traffic(h.events).status == "pass"


def test_a_checkpoint_that_moves_during_the_fault_is_traffic_without_a_workload():
    # a batch source has no workload events: the checkpoint persisted inside the window is the traffic
    h = H().checkpoint(1.0, positions(100)).fault(0, 2.0, 4.0).checkpoint(3.0, positions(200))
    h.checkpoint(4.5, positions(300)).at(5.0, "run.drained", seconds=0.5)
    assert check_fault_traffic(h.events).status == "pass"


def test_each_fault_must_meet_traffic_on_its_own():
    h = recovering(1.0).fault(1, 20.0, 21.0)  # the second fault comes after the workload and the drain
    v = check_fault_traffic(h.events)
    assert v.status == "inconclusive" and v.counts == {"faults": 2, "faults_without_traffic": 1}
    assert v.examples == [1] and "faults[1]" in v.summary and "faults[0]" not in v.summary


def test_crashes_are_the_windows_when_nothing_was_injected():
    # a batch pipeline crashes with input still in flight: the checkpoint after it moved on
    mid = H().checkpoint(1.0, positions(100)).at(1.5, "crash", process="worker-0", point="sink.prepare.after")
    mid.checkpoint(3.0, positions(200)).at(3.5, "run.drained", seconds=0.5)
    v = check_fault_traffic(mid.events)
    assert v.status == "pass" and v.counts == {"faults": 1, "faults_without_traffic": 0}
    # the same crash after all the input was processed proves nothing
    idle = H().checkpoint(1.0, positions(400)).at(1.5, "crash", process="worker-0", point="sink.commit.after")
    idle.checkpoint(3.0, positions(400)).at(3.5, "run.drained", seconds=0.5)
    v = check_fault_traffic(idle.events)
    assert v.status == "inconclusive" and "crash[0] (crash of worker-0 at sink.commit.after)" in v.summary


def test_opaque_progress_counts_a_commit_from_the_fault_on():
    opaque = {"0": {"instant": "20261129092244600"}}
    h = H().checkpoint(1.0, opaque).fault(0, 2.0, 4.0).checkpoint(4.5, opaque)
    assert check_fault_traffic(h.events).status == "pass"
    late = H().checkpoint(1.0, opaque).fault(0, 2.0, 4.0)
    assert check_fault_traffic(late.events).status == "inconclusive"


def test_no_faults_is_no_question_of_traffic():
    assert check_fault_traffic(H().checkpoint(1.0, positions(10)).events).status == "pass"


# --- a hanging transaction: the LSO stuck behind the high watermark until the end ---

def stable(ts: float, lso: int, hw: int, partition: int = 0, topic: str = "out") -> dict:
    return {"ts": ts, "event": Event.STABLE_OFFSETS, "topic": topic, "offsets": {str(partition): [lso, hw]}}


def test_a_stable_offset_stuck_behind_the_high_watermark_to_the_end_is_named_a_hanging_transaction():
    history = [stable(100.0 + 2 * n, 40 if n >= 3 else 10 * n, 50 + 10 * n) for n in range(15)]
    v = check_liveness(history, 30)
    assert v.status == "fail" and v.counts["hanging_transactions"] == 1
    assert "hanging transaction: read_committed readers of out are stuck" in v.summary
    assert "partition 0 at last stable offset 40, high watermark 190" in v.summary
    (hang,) = hanging_transactions(history)
    assert hang.seconds == 22.0 and hang.high_watermark == 190


def test_an_open_transaction_that_commits_or_is_young_at_the_end_is_no_hang():
    moving = [stable(100.0 + 2 * n, 10 * n, 10 * n + 5) for n in range(15)]  # behind, but advancing
    committed = [stable(100.0 + 2 * n, 40, 50) for n in range(14)] + [stable(130.0, 50, 50)]  # caught up
    young = [stable(100.0 + 2 * n, 10 * n, 200) for n in range(10)] + [stable(120.0 + n, 90, 200) for n in range(8)]
    for history in (moving, committed, young):
        assert hanging_transactions(history) == []
        assert check_liveness(history, 30).status == "pass"
