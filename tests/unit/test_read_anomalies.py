"""Reads during the run: ids that vanish from a later observation, and ids seen that no commit kept."""

from __future__ import annotations

import pyarrow as pa

from chaos.checkers.reads import check_aborted_reads, check_monotonic_reads, check_premature_reads
from chaos.sides.visibility import units_table


def observations(*polls):
    return [{"ts": 100.0 + n, "ids": pa.chunked_array([pa.array(ids, pa.int64())])} for n, ids in enumerate(polls)]


def test_growing_observations_are_monotonic_and_kept():
    seen = observations([], [1, 2], [1, 2, 3, 3], [3, 2, 1, 4])
    verdict = check_monotonic_reads(seen)
    assert (verdict.status, verdict.counts) == ("pass", {"observations": 4, "ids_seen": 4, "vanished_ids": 0})
    kept = check_aborted_reads(seen, pa.array([1, 2, 3, 4, 5]))
    assert (kept.status, kept.counts) == ("pass", {"observations": 4, "ids_seen": 4, "aborted_ids": 0})


def test_ids_that_vanish_and_come_back_are_non_monotonic_even_when_the_final_state_is_right():
    # A prepared file exposed (5, 6), deleted by a rollback, then rewritten by the replay.
    seen = observations([1], [1, 5, 6], [1], [1, 2], [1, 2, 5, 6])
    verdict = check_monotonic_reads(seen)
    assert verdict.status == "fail"
    assert verdict.counts == {"observations": 5, "ids_seen": 4, "vanished_ids": 2}
    assert verdict.examples == [5, 6]
    # The final output holds them again: no aborted read, which is why monotonicity is judged apart.
    assert check_aborted_reads(seen, pa.array([1, 2, 5, 6])).status == "pass"


def test_an_id_missing_from_only_the_last_observation_vanished():
    verdict = check_monotonic_reads(observations([7, 8], [7, 8], [8]))
    assert (verdict.status, verdict.examples) == ("fail", [7])


def test_ids_seen_that_the_final_output_lacks_are_aborted_reads():
    seen = observations([1, 2], [1, 2, 9, 10, 11])
    verdict = check_aborted_reads(seen, pa.chunked_array([pa.array([1, 2]), pa.array([3])]))
    assert verdict.status == "fail"
    assert verdict.counts == {"observations": 2, "ids_seen": 5, "aborted_ids": 3}
    assert verdict.examples == [9, 10, 11]


def test_nothing_seen_is_inconclusive_never_a_pass():
    for seen in ([], observations([], [])):
        assert check_monotonic_reads(seen).status == "inconclusive"
        assert check_aborted_reads(seen, pa.array([1])).status == "inconclusive"


UNITS = pa.table({"checkpoint_id": pa.array([1000, 1000, 2000, 2000, 3000], pa.int64()),
                  "id": pa.array([1, 2, 3, 4, 5], pa.int64())})


def test_ids_seen_only_after_their_commit_was_decided_are_not_premature():
    seen = observations([], [1, 2], [1, 2, 3, 4])  # at ts 100, 101, 102
    verdict = check_premature_reads(seen, UNITS, {1000: 100.5, 2000: 101.9, 3000: 150.0})
    assert verdict.status == "pass"
    assert verdict.counts == {"observations": 3, "units": 3, "units_without_decision": 0, "premature_ids": 0,
                              "units_committed_before_decided": 0, "units_without_commit_time": 3}


def test_prepared_data_seen_before_the_decision_is_a_premature_read():
    # Ids 3 and 4 seen at ts 101, their checkpoint decided at 103.5: visible 2.5 s early.
    seen = observations([1, 2], [1, 2, 3, 4], [1, 2], [1, 2, 3, 4])
    verdict = check_premature_reads(seen, UNITS, {1000: 99.0, 2000: 103.5})
    assert verdict.status == "fail"
    assert verdict.examples == [3, 4] and verdict.counts["premature_ids"] == 2
    assert "up to 2.5s before" in verdict.summary
    # Within the clock tolerance it is no finding.
    assert check_premature_reads(seen, UNITS, {1000: 99.0, 2000: 101.05}).status == "pass"


def test_units_without_a_decision_and_ids_in_several_units_are_left_out_not_guessed():
    replayed = pa.concat_tables([UNITS, pa.table({"checkpoint_id": pa.array([3000], pa.int64()),
                                                  "id": pa.array([3], pa.int64())})])
    seen = observations([3, 5])
    verdict = check_premature_reads(seen, replayed, {2000: 500.0})
    assert verdict.status == "pass"  # 3 is in two units, 5's unit has no decision on record
    assert verdict.counts["units_without_decision"] == 2
    assert check_premature_reads([], UNITS, {}).status == "inconclusive"


def test_a_commit_record_older_than_its_decision_is_premature_whatever_the_reader_saw():
    units = units_table([(1000, pa.array([1, 2], pa.int64())), (2000, pa.array([3], pa.int64()))],
                        {1000: 10.0, 2000: 20.0})  # when each commit landed, by its own record
    late_reader = [{"ts": 30.0, "ids": pa.array([1, 2, 3], pa.int64())}]
    assert check_premature_reads(late_reader, units, {1000: 9.0, 2000: 19.95}).status == "pass"  # within 0.1 s
    hasty = check_premature_reads([], units, {1000: 9.0, 2000: 22.0})  # unit 2000 landed 2 s before its decision
    assert hasty.status == "fail" and hasty.examples == [3] and hasty.counts["units_committed_before_decided"] == 1
