"""The loss, duplicates and phantoms checkers' two paths give the same verdict.

Each checker counts dense integer ids by position (`*_by_position`, numpy arrays indexed by id) and
falls back to hashing (`*_by_hash`, `*_by_join`) for any other ids. Every test here runs a checker
as the runner calls it, then again with its fast path switched off, and compares the whole verdicts:
status, summary, counts and examples. Each also asserts which path the data takes, so that a fast
path that stopped applying could not make the comparison vacuous.
"""

from __future__ import annotations

import zlib

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.checkers import duplicates, ids, loss, phantoms
from chaos.checkers.duplicates import check_duplicates
from chaos.checkers.loss import check_loss
from chaos.checkers.phantoms import check_phantoms
from chaos.checkers.verdict import Verdict
from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import expected_table

COLUMNS = ["id", "payload", "checksum"]
OUTPUT_SCHEMA = pa.schema([("id", pa.int64()), ("payload", pa.string()), ("checksum", pa.int64())])
INT64 = pa.int64()
PROPERTY = settings(max_examples=300, deadline=None, database=None, derandomize=True)


def general(monkeypatch: pytest.MonkeyPatch, module: object, fast: str, check, *args) -> Verdict:
    """The checker's verdict with its fast path switched off."""
    with monkeypatch.context() as patched:
        patched.setattr(module, fast, lambda *a: None)
        return check(*args)


def both_loss(monkeypatch, truth: pa.Table, output: pa.Table, fast: bool) -> Verdict:
    assert (loss.lost_by_position(truth, output) is not None) is fast
    verdict = check_loss(truth, output, True)
    assert verdict == general(monkeypatch, loss, "lost_by_position", check_loss, truth, output, True)
    return verdict


def both_duplicates(monkeypatch, output: pa.Table, fast: bool) -> Verdict:
    assert (duplicates.duplicates_by_position(output) is not None) is fast
    verdict = check_duplicates(output, True)
    assert verdict == general(monkeypatch, duplicates, "duplicates_by_position", check_duplicates, output, True)
    return verdict


def both_phantoms(monkeypatch, expected: pa.Table, output: pa.Table, fast: bool) -> Verdict:
    assert (phantoms.phantoms_by_position(expected, output) is not None) is fast
    verdict = check_phantoms(expected, output)
    assert verdict == general(monkeypatch, phantoms, "phantoms_by_position", check_phantoms, expected, output)
    return verdict


def id_table(values: list[int | None], type_: pa.DataType = INT64, chunks: int = 1) -> pa.Table:
    """An `id` column, split into `chunks` record batches like a multi-file read."""
    table = pa.table({"id": pa.array(values, type_)})
    step = max(1, -(-len(values) // chunks))
    return table if chunks == 1 or not values else pa.concat_tables(
        [table.slice(i, step) for i in range(0, len(values), step)])


@pytest.fixture(scope="module")
def expected() -> pa.Table:
    return expected_table(WorkloadSpec(records=40, rate=100, payload_size=16), seed=11)


@pytest.fixture(scope="module")
def damaged(expected: pa.Table) -> pa.Table:
    """The expected records shuffled, with each kind of damage the checkers count, in three chunks."""
    rows = expected.select(COLUMNS).to_pylist()
    by_id = {r["id"]: r for r in rows}
    out = [r for r in rows[::-1] if r["id"] not in (2, 17, 30, 31)]  # 4 lost
    out += [by_id[5], by_id[9], by_id[9], by_id[33]]  # 3 ids duplicated, 4 extra copies
    out += [{"id": i, "payload": "made-up", "checksum": zlib.crc32(b"made-up")} for i in (40, 77, 40)]  # phantoms
    for i, change in ((4, {"payload": "tampered"}), (12, {"checksum": 1}), (20, {"payload": None}),
                      (21, {"checksum": None}), (22, {"payload": "f" * 16, "checksum": zlib.crc32(b"f" * 16)})):
        out[[r["id"] for r in out].index(i)] = {**by_id[i], **change}
    out.append({**by_id[5], "payload": "tampered copy"})  # a bad copy next to a good one
    table = pa.Table.from_pylist(out, schema=OUTPUT_SCHEMA)
    return pa.concat_tables([table.slice(0, 15), table.slice(15, 15), table.slice(30)])


# --- dense ids: the fast path -------------------------------------------------------------------


def test_lost_records_are_counted_alike(monkeypatch, expected, damaged):
    v = both_loss(monkeypatch, expected, damaged, fast=True)
    assert v.status == "fail" and v.counts == {"source_records": 40, "lost": 4} and v.examples == [2, 17, 30, 31]


def test_duplicates_are_counted_alike(monkeypatch, damaged):
    v = both_duplicates(monkeypatch, damaged, fast=True)
    assert v.counts == {"output_records": 44, "duplicated_ids": 4, "extra_copies": 6}
    assert v.examples == [5, 9, 33, 40]


def test_phantoms_and_corruption_are_counted_alike(monkeypatch, expected, damaged):
    v = both_phantoms(monkeypatch, expected, damaged, fast=True)
    assert v.counts == {"phantoms": 3, "corrupted": 6} and v.examples == [4, 5, 12, 20, 21]


def test_the_fast_phantoms_path_compares_slice_by_slice_alike(monkeypatch, expected, damaged):
    monkeypatch.setattr(phantoms, "SLICE", 7)  # 44 rows: six full slices and a partial one
    chunked = pa.concat_tables([expected.slice(0, 13), expected.slice(13)])  # `take` across two chunks
    v = both_phantoms(monkeypatch, chunked, damaged, fast=True)
    assert v.counts == {"phantoms": 3, "corrupted": 6}


def test_clean_output_passes_alike(monkeypatch, expected):
    output = expected.select(COLUMNS).take(list(range(39, -1, -1)))
    assert both_loss(monkeypatch, expected, output, fast=True).status == "pass"
    assert both_duplicates(monkeypatch, output, fast=True).status == "pass"
    assert both_phantoms(monkeypatch, expected, output, fast=True).status == "pass"


def test_negative_and_far_output_ids_are_phantoms_and_no_loss_alike(monkeypatch, expected):
    strays = pa.Table.from_pylist([{"id": i, "payload": "p", "checksum": zlib.crc32(b"p")} for i in (-5, 10**15)],
                                  schema=OUTPUT_SCHEMA)
    output = pa.concat_tables([expected.select(COLUMNS).slice(1), strays])
    assert both_loss(monkeypatch, expected, output, fast=True).examples == [0]
    v = both_phantoms(monkeypatch, expected, output, fast=True)
    assert v.counts == {"phantoms": 2, "corrupted": 0} and v.examples == [-5, 10**15]
    assert both_duplicates(monkeypatch, output, fast=False).status == "pass"  # not dense: hashed


def test_output_ids_of_another_integer_type_are_compared_alike(monkeypatch):
    truth = id_table([0, 1, 2, 3, 3])
    output = id_table([3, 0, 0, 7], pa.int32(), chunks=2)
    v = both_loss(monkeypatch, truth, output, fast=True)
    assert v.counts == {"source_records": 4, "lost": 2} and v.examples == [1, 2]
    assert both_duplicates(monkeypatch, output, fast=True).examples == [0]


def test_empty_tables_are_counted_alike(monkeypatch, expected):
    none = id_table([])
    assert both_loss(monkeypatch, none, none, fast=True).counts == {"source_records": 0, "lost": 0}
    assert both_loss(monkeypatch, id_table([0, 1]), none, fast=True).counts == {"source_records": 2, "lost": 2}
    assert both_loss(monkeypatch, none, id_table([4]), fast=True).status == "pass"
    assert both_duplicates(monkeypatch, none, fast=True).counts == {"output_records": 0, "duplicated_ids": 0,
                                                                    "extra_copies": 0}
    empty_output = expected.select(COLUMNS).slice(0, 0)
    assert both_phantoms(monkeypatch, expected, empty_output, fast=True).status == "pass"
    v = both_phantoms(monkeypatch, expected.slice(0, 0), expected.select(COLUMNS).slice(3, 2), fast=True)
    assert v.counts == {"phantoms": 2, "corrupted": 0} and v.examples == [3, 4]


# --- ids that are not dense: the general path ---------------------------------------------------


def test_sparse_ids_take_the_general_path(monkeypatch):
    truth = id_table([0, 10**9, 2 * 10**9])
    output = id_table([10**9, 10**9, 5])
    assert both_loss(monkeypatch, truth, output, fast=False).examples == [0, 2 * 10**9]
    assert both_duplicates(monkeypatch, output, fast=False).counts["extra_copies"] == 1


def test_negative_ids_take_the_general_path(monkeypatch):
    truth = id_table([-1, 0, 1])
    output = id_table([0, -1, -1])
    assert both_loss(monkeypatch, truth, output, fast=False).examples == [1]
    assert both_duplicates(monkeypatch, output, fast=False).examples == [-1]


def test_null_ids_take_the_general_path(monkeypatch, expected):
    output = id_table([0, None, None, 1, 1])
    v = both_loss(monkeypatch, id_table([0, 1, 2]), output, fast=False)
    assert v.counts == {"source_records": 3, "lost": 1} and v.examples == [2]
    # a null id is never counted as a copy of another null
    assert both_duplicates(monkeypatch, output, fast=False).counts == {"output_records": 5, "duplicated_ids": 1,
                                                                       "extra_copies": 1}
    nulls = pa.Table.from_pylist([{"id": None, "payload": "p", "checksum": 1}], schema=OUTPUT_SCHEMA)
    v = both_phantoms(monkeypatch, expected, pa.concat_tables([expected.select(COLUMNS), nulls]), fast=False)
    assert v.counts == {"phantoms": 1, "corrupted": 0}


def test_expected_ids_out_of_order_take_the_join(monkeypatch, expected, damaged):
    shuffled = expected.take(list(range(1, 40)) + [0])
    assert both_phantoms(monkeypatch, shuffled, damaged, fast=False).counts == {"phantoms": 3, "corrupted": 6}
    gap = expected.slice(0, 39).set_column(0, "id", pa.array(list(range(38)) + [37], pa.int64()))  # 37 twice
    assert both_phantoms(monkeypatch, gap, damaged, fast=False).status == "fail"


def test_output_ids_of_another_type_than_the_expected_ids_are_left_to_the_join(expected):
    output = expected.select(COLUMNS).cast(OUTPUT_SCHEMA.set(0, pa.field("id", pa.int32())))
    assert phantoms.phantoms_by_position(expected, output) is None  # the join decides, as it always has


def test_unsigned_ids_beyond_int64_take_the_general_path(monkeypatch):
    truth = id_table([0, 1, 2], pa.uint64())
    output = id_table([0, 2, 2**64 - 1], pa.uint64())
    assert both_loss(monkeypatch, truth, output, fast=False).examples == [1]
    assert both_duplicates(monkeypatch, output, fast=False).status == "pass"


def test_the_density_bound_is_four_per_row_plus_slack():
    rows = 3
    bound = ids.SPARSE_FACTOR * rows + ids.SPARSE_SLACK
    assert (bound, ids.SPARSE_FACTOR, ids.SPARSE_SLACK) == (65548, 4, 65536)
    assert ids.as_numpy(pa.chunked_array([[0, 1, bound - 1]]), dense=True).tolist() == [0, 1, bound - 1]
    assert ids.as_numpy(pa.chunked_array([[0, 1, bound]]), dense=True) is None
    assert ids.as_numpy(pa.chunked_array([[0, 1, bound]]), dense=False).tolist() == [0, 1, bound]
    assert ids.as_numpy(pa.chunked_array([[-1, 1, 2]]), dense=True) is None
    assert ids.as_numpy(pa.chunked_array([[-1, 1, 2]]), dense=False).tolist() == [-1, 1, 2]
    assert ids.as_numpy(pa.chunked_array([[0, None]], pa.int64()), dense=False) is None
    assert ids.as_numpy(pa.chunked_array([["0"]]), dense=False) is None
    assert ids.as_numpy(pa.chunked_array([[2**63 - 1]], pa.uint64()), dense=False).tolist() == [2**63 - 1]
    assert ids.as_numpy(pa.chunked_array([[2**63]], pa.uint64()), dense=False) is None


def test_ids_just_inside_and_just_outside_the_bound_give_the_same_verdicts(monkeypatch):
    inside, outside = id_table([0, 3, 3, 65551]), id_table([0, 3, 3, 65552])  # 4 rows: the bound is 65552
    v = both_duplicates(monkeypatch, inside, fast=True)
    assert v.counts == {"output_records": 4, "duplicated_ids": 1, "extra_copies": 1} and v.examples == [3]
    assert both_duplicates(monkeypatch, outside, fast=False).counts == v.counts
    assert both_loss(monkeypatch, id_table([0, 1, 2, 3, 65551]), outside, fast=True).examples == [1, 2, 65551]
    assert both_loss(monkeypatch, id_table([0, 1, 2, 3, 65556]), inside, fast=False).examples == [1, 2, 65556]


# --- any ids: both paths agree ------------------------------------------------------------------

SMALL_IDS = st.lists(st.integers(min_value=-3, max_value=40), max_size=30)


@PROPERTY
@given(truth=SMALL_IDS, output=SMALL_IDS)
def test_loss_and_duplicates_agree_on_any_small_ids(truth, output):
    truth_table, output_table = id_table(truth, chunks=2), id_table(output, chunks=3)
    fast = loss.lost_by_position(truth_table, output_table)
    assert (fast is None) is any(i < 0 for i in truth)
    assert fast is None or fast == loss.lost_by_hash(truth_table, output_table)
    fast = duplicates.duplicates_by_position(output_table)
    assert (fast is None) is any(i < 0 for i in output)
    assert fast is None or fast == duplicates.duplicates_by_hash(output_table)


ROW = st.tuples(st.integers(min_value=-2, max_value=9), st.sampled_from(["same", "other", None]),
                st.sampled_from(["same", "other", None]))


@PROPERTY
@given(records=st.integers(min_value=0, max_value=8), rows=st.lists(ROW, max_size=25))
def test_phantoms_agree_on_any_output(expected, records, rows):
    truth = expected.select(COLUMNS).slice(0, records)
    want = {r["id"]: r for r in truth.to_pylist()}
    out = []
    for i, payload, crc in rows:
        real = want.get(i, {"payload": "x", "checksum": 0})
        out.append({"id": i, "payload": {"same": real["payload"], "other": "other", None: None}[payload],
                    "checksum": {"same": real["checksum"], "other": -1, None: None}[crc]})
    output = pa.Table.from_pylist(out, schema=OUTPUT_SCHEMA)
    fast = phantoms.phantoms_by_position(truth, output)
    assert fast is not None and fast == phantoms.phantoms_by_join(truth, output)
