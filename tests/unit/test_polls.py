"""The queue checks of a polled Kafka output, on hand-made poll tables: what a consumer handed in
order passes, and each way of handing it wrong fails with its own verdict; and which checkpoint
covers a source record, from the persisted positions."""

from __future__ import annotations

import pyarrow as pa

from chaos.checkers.coverage import covering_units
from chaos.checkers.polls import (
    check_duplicate_deliveries,
    check_lost_writes,
    check_monotonic_polls,
    check_poll_skips,
    poll_observations,
)
from chaos.checkers.reads import check_premature_reads
from chaos.sides.kafka_polls import POLL_SCHEMA


def polls(*rows: tuple[int, float, int, int]) -> pa.Table:
    """(session, ts, partition, offset) rows; a record's id is 1000 * partition + offset."""
    return pa.table({"session": [r[0] for r in rows], "ts": [r[1] for r in rows], "partition": [r[2] for r in rows],
                     "offset": [r[3] for r in rows], "id": [1000 * r[2] + r[3] for r in rows]}, schema=POLL_SCHEMA)


def topic(*held: tuple[int, int]) -> pa.Table:
    """The final read: (partition, offset) of every record the topic holds, read_committed."""
    return pa.table({"id": [1000 * p + o for p, o in held], "partition": pa.array([p for p, _ in held], pa.int32()),
                     "offset": pa.array([o for _, o in held], pa.int64())})


# Offsets 0-2 and 5-6 of partition 0 are records; 3 is a transaction marker, 4 an aborted record.
HELD = topic((0, 0), (0, 1), (0, 2), (0, 5), (0, 6), (1, 0), (1, 1))
IN_ORDER = polls((1, 1.0, 0, 0), (1, 1.0, 1, 0), (1, 1.1, 0, 1), (1, 1.1, 0, 2), (1, 1.2, 0, 5), (1, 1.2, 0, 6),
                 (1, 1.3, 1, 1),
                 # a second session reads from the beginning again: no duplicate within either session
                 (2, 2.0, 0, 0), (2, 2.0, 0, 1))


def test_a_consumer_handed_every_record_in_order_passes_every_queue_check():
    for verdict in (check_poll_skips(IN_ORDER, HELD), check_monotonic_polls(IN_ORDER),
                    check_duplicate_deliveries(IN_ORDER)):
        assert verdict.status == "pass", verdict


def test_jumping_over_a_record_the_topic_holds_is_a_poll_skip_but_over_a_marker_is_not():
    skipped = polls((1, 1.0, 0, 0), (1, 1.1, 0, 2), (1, 1.2, 0, 5), (1, 1.3, 0, 6))  # 1 was there; 3, 4 were not
    verdict = check_poll_skips(skipped, HELD)
    assert verdict.status == "fail" and verdict.counts["skipped_offsets"] == 1 and verdict.examples == [2]
    late_start = polls((1, 1.0, 1, 1))  # a session starts at the beginning: offset 0 of partition 1 was there
    assert check_poll_skips(late_start, HELD).counts["skipped_offsets"] == 1


def test_going_backwards_within_a_session_is_a_non_monotonic_poll_and_a_redelivery():
    rewound = polls((1, 1.0, 0, 0), (1, 1.1, 0, 1), (1, 1.2, 0, 2), (1, 1.3, 0, 1), (1, 1.4, 0, 2))
    backwards = check_monotonic_polls(rewound)
    assert backwards.status == "fail" and backwards.counts["backward_steps"] == 1 and backwards.examples == [1]
    again = check_duplicate_deliveries(rewound)
    assert again.status == "fail" and again.counts["redelivered_offsets"] == 2 and again.examples == [1, 2]


def test_nothing_handed_proves_nothing():
    empty = POLL_SCHEMA.empty_table()
    for verdict in (check_poll_skips(empty, HELD), check_monotonic_polls(empty), check_duplicate_deliveries(empty)):
        assert verdict.status == "inconclusive", verdict


def test_a_committed_record_no_reader_saw_is_a_lost_write():
    committed = pa.array([0, 1, 2, 5, 6, 1000, 1001, 7], pa.int64())
    lost = check_lost_writes(committed, IN_ORDER, HELD)
    assert lost.status == "fail" and lost.examples == [7]
    assert check_lost_writes(committed[:-1], IN_ORDER, HELD).status == "pass"
    assert check_lost_writes(pa.array([], pa.int64()), IN_ORDER, HELD).status == "inconclusive"


def test_each_source_record_belongs_to_the_first_persisted_checkpoint_past_its_offset():
    truth = pa.table({"partition": pa.array([0, 0, 0, 1, 1], pa.int32()), "offset": pa.array([0, 1, 2, 0, 1]),
                      "id": pa.array([10, 11, 12, 20, 21])})
    persisted = [
        {"checkpoint_id": 1, "positions": {"0": {"0": 1}}},  # partition 1 not read yet
        {"checkpoint_id": 2, "positions": {"0": {"0": 1, "1": 2}}},
        {"checkpoint_id": 4, "positions": {"0": {"0": 0}}},  # a replay's checkpoint, behind: covers nothing new
        {"checkpoint_id": 5, "positions": {"0": {"0": 2}}},
    ]
    units = covering_units(truth, persisted)
    assert dict(zip(units["id"].to_pylist(), units["checkpoint_id"].to_pylist())) == {10: 1, 11: 5, 20: 2, 21: 2}


def test_a_record_handed_before_the_checkpoint_that_covers_it_was_decided_is_a_premature_read():
    handed = polls((1, 10.0, 0, 0), (1, 10.0, 0, 1), (1, 12.0, 0, 2))
    observations = poll_observations(handed)
    assert [o["ts"] for o in observations] == [10.0, 12.0] and observations[0]["ids"].to_pylist() == [0, 1]
    units = pa.table({"checkpoint_id": pa.array([1000, 1000, 2000], pa.int64()), "id": pa.array([0, 1, 2], pa.int64())})
    assert check_premature_reads(observations, units, {1000: 9.9, 2000: 11.0}).status == "pass"
    early = check_premature_reads(observations, units, {1000: 11.5, 2000: 11.0})  # committed before decided
    assert early.status == "fail" and early.examples == [0, 1]


def test_reads_judged_against_no_decision_prove_nothing():
    observations = poll_observations(polls((1, 10.0, 0, 0)))
    units = pa.table({"checkpoint_id": pa.array([1000], pa.int64()), "id": pa.array([0], pa.int64())})
    assert check_premature_reads(observations, units, {}).status == "inconclusive"
    files = pa.table({"id": pa.array([0, 1], pa.int64())})  # a source without offsets places no record
    assert covering_units(files, [{"checkpoint_id": 1, "positions": {"0": {"0": 5}}}]).num_rows == 0

