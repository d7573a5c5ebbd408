"""The late-events checker on synthetic partitions: a pass, a drop, and a misrouted on-time record."""

from __future__ import annotations

import pyarrow as pa

from chaos.checkers.late import check_late_events, expected_late


def _truth() -> pa.Table:
    # partition 0: event times 100, 200, 50 (late: 150 behind 200), 300; partition 1: 10, 5 (5 behind: on time)
    return pa.table({"partition": [0, 0, 0, 0, 1, 1], "offset": [0, 1, 2, 3, 0, 1], "id": [1, 2, 3, 4, 5, 6],
                     "event_time": [100, 200, 50, 300, 10, 5]})


def _ids(values: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(values, pa.int64())})


def test_expected_late_follows_each_partitions_watermark():
    assert expected_late(_truth(), allowed_ms=100).to_pylist() == [3]
    assert expected_late(_truth(), allowed_ms=200).to_pylist() == []


def test_correct_routing_passes():
    verdict = check_late_events(_truth(), _ids([1, 2, 4, 5, 6]), _ids([3]), allowed_ms=100)
    assert verdict.status == "pass" and verdict.counts["late"] == 1


def test_a_late_record_dropped_silently_fails():
    verdict = check_late_events(_truth(), _ids([1, 2, 4, 5, 6]), _ids([]), allowed_ms=100)
    assert verdict.status == "fail" and verdict.counts["late_dropped"] == 1 and verdict.examples == [3]


def test_an_on_time_record_in_the_late_output_fails():
    verdict = check_late_events(_truth(), _ids([1, 2, 4, 5]), _ids([3, 6]), allowed_ms=100)
    assert verdict.status == "fail" and verdict.counts["on_time_routed_late"] == 1 and verdict.examples == [6]


def test_a_late_record_left_in_the_main_output_fails():
    verdict = check_late_events(_truth(), _ids([1, 2, 3, 4, 5, 6]), _ids([]), allowed_ms=100)
    assert verdict.status == "fail" and verdict.counts["late_in_main_output"] == 1


def _truth_with_a_gap() -> pa.Table:
    # partition 0: 100, then 1000 that a restarted source skipped, then 200 (late behind 1000, not behind 100)
    return pa.table({"partition": [0, 0, 0], "offset": [0, 1, 2], "id": [1, 2, 3], "event_time": [100, 1000, 200],
                     "skipped": [False, True, False]})


def test_a_record_the_source_skipped_is_not_judged_and_moves_no_watermark():
    assert expected_late(_truth_with_a_gap().drop_columns(["skipped"]), allowed_ms=100).to_pylist() == [3]
    assert expected_late(_truth_with_a_gap(), allowed_ms=100).to_pylist() == []
    verdict = check_late_events(_truth_with_a_gap(), _ids([1, 3]), _ids([2]), allowed_ms=100)  # 2: from a dead run
    assert verdict.status == "pass" and verdict.counts["skipped"] == 1 and verdict.counts["routed_late"] == 0


def test_a_skip_elsewhere_excuses_no_misrouted_or_dropped_record():
    truth = _truth().append_column("skipped", pa.array([False, False, False, False, False, True]))
    assert check_late_events(truth, _ids([1, 2, 3, 4, 5]), _ids([]), allowed_ms=100).counts["late_in_main_output"] == 1
    dropped = check_late_events(truth, _ids([1, 2, 4, 5]), _ids([]), allowed_ms=100)
    assert dropped.status == "fail" and dropped.examples == [3]
