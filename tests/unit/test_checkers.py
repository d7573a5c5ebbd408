"""Recovery invariants on synthetic histories: each checker must fail on a bad one and pass a good one."""

from __future__ import annotations

import zlib

import pyarrow as pa
import pytest

from chaos.checkers.duplicates import check_duplicates
from chaos.checkers.loss import check_loss
from chaos.checkers.phantoms import check_phantoms
from chaos.checkers.source_acks import check_source_acks
from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import expected_table

OUTPUT_SCHEMA = pa.schema([("id", pa.int64()), ("payload", pa.string()), ("checksum", pa.int64())])
OUTCOME_SCHEMA = pa.schema([("id", pa.int64()), ("status", pa.string()), ("partition", pa.int32()),
                            ("offset", pa.int64()), ("error", pa.string())])


def ids_table(ids: list[int], chunks: int = 1) -> pa.Table:
    """A table with an `id` column, split into `chunks` record batches like a multi-file read."""
    table = pa.table({"id": pa.array(ids, pa.int64())})
    if chunks == 1 or not ids:
        return table
    step = -(-len(ids) // chunks)
    return pa.concat_tables([table.slice(i, step) for i in range(0, len(ids), step)])


# --- no loss ------------------------------------------------------------------------------------


def test_loss_fails_and_reports_smallest_missing_ids():
    truth = ids_table(list(range(20)), chunks=3)
    missing = {17, 3, 11, 5, 8, 2, 14}
    # the output also holds duplicates and an id the source never had: neither hides a loss
    output = ids_table([i for i in reversed(range(20)) if i not in missing] + [0, 0, 999], chunks=2)
    v = check_loss(truth, output, required=True)
    assert v.invariant == "no-loss"
    assert v.status == "fail" and v.failed
    assert v.counts == {"source_records": 20, "lost": 7}
    assert v.examples == [2, 3, 5, 8, 11]
    assert "7 of 20" in v.summary


def test_loss_not_required_is_info():
    v = check_loss(ids_table([1, 2, 3]), ids_table([1]), required=False)
    assert v.status == "info" and not v.failed
    assert v.counts == {"source_records": 3, "lost": 2}
    assert v.examples == [2, 3]


def test_loss_passes_when_every_source_record_is_in_the_output():
    truth = ids_table([4, 1, 3, 2, 1])  # the topic may hold a record twice (producer retries)
    v = check_loss(truth, ids_table([1, 2, 3, 4, 4, 5]), required=True)
    assert v.status == "pass"
    assert v.counts == {"source_records": 4, "lost": 0}
    assert v.examples == []


def test_loss_with_empty_output_loses_everything():
    v = check_loss(ids_table([0, 1]), ids_table([]))
    assert v.status == "fail"
    assert v.counts == {"source_records": 2, "lost": 2}


# --- duplicates ---------------------------------------------------------------------------------

DUPLICATED = [5, 1, 9, 9, 5, 5, 3, 7, 7, 2, 8, 8, 4, 4, 6, 6]  # 6 ids repeated, 7 extra copies


def test_duplicates_forbidden_fails_with_counts_and_smallest_examples():
    v = check_duplicates(ids_table(DUPLICATED, chunks=4), forbidden=True)
    assert v.invariant == "duplicates"
    assert v.status == "fail" and v.failed
    assert v.counts == {"output_records": 16, "duplicated_ids": 6, "extra_copies": 7}
    assert v.examples == [4, 5, 6, 7, 8]


def test_duplicates_allowed_is_info():
    v = check_duplicates(ids_table(DUPLICATED), forbidden=False)
    assert v.status == "info" and not v.failed
    assert v.counts["duplicated_ids"] == 6 and v.counts["extra_copies"] == 7
    assert "allowed" in v.summary


@pytest.mark.parametrize("forbidden", [True, False])
def test_duplicates_pass_without_repeats(forbidden):
    v = check_duplicates(ids_table([3, 1, 2, 0]), forbidden=forbidden)
    assert v.status == "pass"
    assert v.counts == {"output_records": 4, "duplicated_ids": 0, "extra_copies": 0}
    assert v.examples == []


def test_duplicates_on_empty_output_pass():
    v = check_duplicates(ids_table([]), forbidden=True)
    assert v.status == "pass"
    assert v.counts["output_records"] == 0


# --- no phantoms --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expected() -> pa.Table:
    return expected_table(WorkloadSpec(records=20, rate=100, payload_size=16), seed=7)


def output_rows(expected: pa.Table) -> list[dict]:
    return expected.select(["id", "payload", "checksum"]).to_pylist()


def as_output(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)


def test_phantoms_pass_on_clean_output_even_shuffled_and_duplicated(expected):
    rows = output_rows(expected)
    v = check_phantoms(expected, as_output(rows[::-1] + rows[:5]))
    assert v.invariant == "no-phantoms"
    assert v.status == "pass"
    assert v.counts == {"phantoms": 0, "corrupted": 0}
    assert v.examples == []


def test_phantom_ids_fail(expected):
    rows = output_rows(expected)
    # self-consistent payloads and checksums: only the ids give them away
    for phantom_id in (1000, 25):
        rows.append({"id": phantom_id, "payload": "made-up", "checksum": zlib.crc32(b"made-up")})
    v = check_phantoms(expected, as_output(rows))
    assert v.status == "fail"
    assert v.counts == {"phantoms": 2, "corrupted": 0}
    assert v.examples == [25, 1000]


def test_tampered_payload_fails(expected):
    rows = output_rows(expected)
    rows[4] = {**rows[4], "payload": rows[4]["payload"][::-1] + "x"}  # checksum left as produced
    v = check_phantoms(expected, as_output(rows))
    assert v.status == "fail"
    assert v.counts == {"phantoms": 0, "corrupted": 1}
    assert v.examples == [4]


def test_tampered_payload_with_recomputed_checksum_fails(expected):
    rows = output_rows(expected)
    forged = "f" * 16
    rows[12] = {**rows[12], "payload": forged, "checksum": zlib.crc32(forged.encode())}
    v = check_phantoms(expected, as_output(rows))
    assert v.status == "fail"
    assert v.counts == {"phantoms": 0, "corrupted": 1}
    assert v.examples == [12]


def test_tampered_checksum_fails(expected):
    rows = output_rows(expected)
    rows[7] = {**rows[7], "checksum": rows[7]["checksum"] ^ 1}
    v = check_phantoms(expected, as_output(rows))
    assert v.status == "fail"
    assert v.counts == {"phantoms": 0, "corrupted": 1}
    assert v.examples == [7]


def test_phantoms_and_corruption_together_report_smallest_ids_first(expected):
    rows = output_rows(expected)
    rows.append({"id": 500, "payload": "p", "checksum": zlib.crc32(b"p")})
    for i in (15, 9, 3):
        rows[i] = {**rows[i], "payload": "tampered"}
    rows.append({"id": 1, "payload": "p", "checksum": zlib.crc32(b"p")})  # corrupt copy next to a good one
    v = check_phantoms(expected, as_output(rows))
    assert v.status == "fail"
    assert v.counts == {"phantoms": 1, "corrupted": 4}
    assert v.examples == [1, 3, 9, 15, 500]


# --- source lost acknowledged writes ------------------------------------------------------------


def outcomes(rows: list[tuple[int, str]]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"id": i, "status": s, "partition": 0 if s == "acked" else -1, "offset": i if s == "acked" else -1,
          "error": "" if s == "acked" else "Local: Message timed out"} for i, s in rows],
        schema=OUTCOME_SCHEMA)


def truth(ids: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "key": pa.array([f"k{i % 3}" for i in ids], pa.string())})


def test_source_acks_fail_when_an_acked_write_is_missing():
    history = outcomes([(0, "acked"), (1, "acked"), (2, "acked"), (3, "acked"), (4, "acked"), (5, "acked"),
                        (6, "indeterminate"), (7, "indeterminate"), (8, "failed"), (9, "failed")])
    topic = truth([0, 1, 3, 4, 6, 9])  # acked 2 and 5 are gone; indeterminate 6 and failed 9 landed
    v = check_source_acks(history, topic)
    assert v.invariant == "source-lost-acked-writes"
    assert v.status == "fail" and v.failed
    assert v.counts == {"acked": 6, "acked_missing": 2, "indeterminate_landed": 1,
                        "indeterminate_missing": 1, "failed_landed": 1}
    assert v.examples == [2, 5]


def test_source_acks_examples_are_the_smallest_lost_ids():
    history = outcomes([(i, "acked") for i in reversed(range(10))])
    v = check_source_acks(history, truth([0, 2]))
    assert v.status == "fail"
    assert v.counts["acked_missing"] == 8
    assert v.examples == [1, 3, 4, 5, 6]


def test_source_acks_pass_when_only_indeterminate_and_failed_writes_are_missing():
    history = outcomes([(0, "acked"), (1, "acked"), (2, "indeterminate"), (3, "indeterminate"), (4, "failed")])
    v = check_source_acks(history, truth([1, 0, 3]))
    assert v.status == "pass" and not v.failed
    assert v.counts == {"acked": 2, "acked_missing": 0, "indeterminate_landed": 1,
                        "indeterminate_missing": 1, "failed_landed": 0}
    assert v.examples == []


def test_source_acks_against_an_empty_topic():
    v = check_source_acks(outcomes([(0, "indeterminate"), (1, "acked")]), truth([]))
    assert v.status == "fail"
    assert v.counts["acked_missing"] == 1 and v.counts["indeterminate_missing"] == 1
    assert v.examples == [1]
