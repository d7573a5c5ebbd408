"""The loss, duplicates and phantoms checkers give the same verdict on a stream of record batches as
on the whole table.

Streamed, the checkers read the output once, a batch at a time, and keep per-id state in one byte
per id (`chaos.checkers.stream.IdTally`, a mask indexed by id) instead of holding the table. Every
test here splits an output into batches of uneven sizes (empty ones included) and compares the
whole verdicts (status, summary, counts and examples) with the table's, on dense ids and on ids that
take the hash paths: sparse, negative, null, unsigned beyond int64, and not integers.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.checkers import ids, loss, phantoms, stream
from chaos.checkers.duplicates import check_duplicates
from chaos.checkers.loss import check_loss
from chaos.checkers.phantoms import check_phantoms
from chaos.checkers.stream import IdTally
from chaos.checkers.verdict import Verdict
from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import expected_table

COLUMNS = ["id", "payload", "checksum"]
OUTPUT_SCHEMA = pa.schema([("id", pa.int64()), ("payload", pa.string()), ("checksum", pa.int64())])
INT64 = pa.int64()
PROPERTY = settings(max_examples=300, deadline=None, database=None, derandomize=True)


def batches(table: pa.Table, seed: int = 0) -> Iterator[pa.RecordBatch]:
    """The table as record batches of 0 to 7 rows, so that a check sees many batches, some empty."""
    rng, start = random.Random(seed), 0
    while start < table.num_rows:
        size = rng.randint(0, 7)
        yield from table.slice(start, size).combine_chunks().to_batches() or [
            pa.RecordBatch.from_pylist([], schema=table.schema)]
        start += size


def agree(check: Callable[[object], Verdict], output: pa.Table, seed: int) -> Verdict | None:
    """The verdict on the table, after asserting the stream's is the same; None when both raise the
    same error (the table's examples cannot be sorted when they mix a null id with others)."""
    try:
        verdict = check(output)
    except TypeError:
        with pytest.raises(TypeError):
            check(batches(output, seed))
        return None
    assert check(batches(output, seed)) == verdict
    return verdict


def same_loss(truth: pa.Table, output: pa.Table, seed: int = 0) -> Verdict | None:
    return agree(lambda out: check_loss(truth, out, True), output, seed)


def same_duplicates(output: pa.Table, seed: int = 0) -> Verdict | None:
    return agree(lambda out: check_duplicates(out, True), output, seed)


def same_phantoms(expected: pa.Table, output: pa.Table, seed: int = 0) -> Verdict | None:
    return agree(lambda out: check_phantoms(expected, out), output, seed)


def id_table(values: list, type_: pa.DataType = INT64) -> pa.Table:
    return pa.table({"id": pa.array(values, type_)})


@pytest.fixture(scope="module")
def expected() -> pa.Table:
    return expected_table(WorkloadSpec(records=40, rate=100, payload_size=16), seed=11)


@pytest.fixture(scope="module")
def damaged(expected: pa.Table) -> pa.Table:
    """The expected records shuffled, lost, duplicated, invented and corrupted."""
    rows = expected.select(COLUMNS).to_pylist()
    by_id = {r["id"]: r for r in rows}
    out = [r for r in rows[::-1] if r["id"] not in (2, 17, 30, 31)]
    out += [by_id[5], by_id[9], by_id[9], by_id[33]]
    out += [{"id": i, "payload": "made-up", "checksum": zlib.crc32(b"made-up")} for i in (40, 77, 40, -3)]
    for i, change in ((4, {"payload": "tampered"}), (12, {"checksum": 1}), (20, {"payload": None}),
                      (21, {"checksum": None})):
        out[[r["id"] for r in out].index(i)] = {**by_id[i], **change}
    return pa.Table.from_pylist(out, schema=OUTPUT_SCHEMA)


# --- dense ids ----------------------------------------------------------------------------------


def test_a_damaged_output_is_judged_alike_streamed(expected, damaged):
    assert same_loss(expected, damaged).counts == {"source_records": 40, "lost": 4}
    assert same_duplicates(damaged).counts == {"output_records": 44, "duplicated_ids": 4, "extra_copies": 5}
    v = same_phantoms(expected, damaged)
    assert v.counts == {"phantoms": 4, "corrupted": 4} and v.examples == [-3, 4, 12, 20, 21]


def test_a_clean_output_passes_alike_streamed(expected):
    output = expected.select(COLUMNS).take(list(range(39, -1, -1)))
    assert same_loss(expected, output).status == "pass"
    assert same_duplicates(output).status == "pass"
    assert same_phantoms(expected, output).status == "pass"


def test_an_empty_stream_is_judged_like_an_empty_table(expected):
    empty = expected.select(COLUMNS).slice(0, 0)
    assert check_loss(expected, iter([]), True) == check_loss(expected, empty, True)
    assert check_duplicates(iter([]), True) == check_duplicates(empty, True)
    assert check_phantoms(expected, iter([])) == check_phantoms(expected, empty)
    assert check_loss(expected.slice(0, 0), iter([]), True).counts == {"source_records": 0, "lost": 0}
    assert same_phantoms(expected.slice(0, 0), expected.select(COLUMNS).slice(3, 9)).counts == {
        "phantoms": 9, "corrupted": 0}
    assert same_loss(expected.slice(0, 0), expected.select(COLUMNS)).status == "pass"


def test_the_streamed_phantoms_check_slices_big_batches_alike(monkeypatch, expected, damaged):
    monkeypatch.setattr(phantoms, "SLICE", 3)
    chunked = pa.concat_tables([expected.slice(0, 13), expected.slice(13)])  # taken from as one array
    assert check_phantoms(chunked, damaged.to_batches()) == check_phantoms(expected, damaged)


def test_a_dictionary_encoded_expected_payload_is_compared_alike(expected, damaged):
    encoded = expected.set_column(expected.schema.get_field_index("payload"), "payload",
                                  expected["payload"].dictionary_encode())
    assert same_phantoms(encoded, damaged) == check_phantoms(expected, damaged)


def test_a_reader_is_a_stream(expected, damaged):
    reader = pa.RecordBatchReader.from_batches(damaged.schema, damaged.to_batches(max_chunksize=6))
    assert check_duplicates(reader, True) == check_duplicates(damaged, True)


# --- the tally ----------------------------------------------------------------------------------


def tally(values: list, chunk: int) -> tuple[int, int, int, list[int]]:
    counter = IdTally()
    for start in range(0, len(values), chunk):
        counter.add(pa.array(values[start:start + chunk], pa.int64()))
    return counter.result()


def reference(values: list) -> tuple[int, int, int, list[int]]:
    copies = Counter(v for v in values if v is not None)
    repeated = sorted(v for v, n in copies.items() if n > 1)
    return sum(copies.values()), len(copies), len(repeated), repeated[:5]


@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled"])
def test_the_tally_grows_and_stashes_in_any_order(monkeypatch, order):
    monkeypatch.setattr(stream, "BLOCK", 16)  # the stash is deduplicated, and examples found, 16 at a time
    monkeypatch.setattr(stream, "SPARSE_SLACK", 8)  # the array's reach binds: ids wait in the stash
    monkeypatch.setattr(stream, "ALLOWANCE", 0)
    values = list(range(5000)) + [7, 7, 4999, 4999, 4999, 2500, -1, -1, 10**12, 10**12, None]
    values = {"ascending": sorted(values, key=lambda v: -1 if v is None else v),
              "descending": sorted(values, key=lambda v: -1 if v is None else v, reverse=True),
              "shuffled": random.Random(3).sample(values, len(values))}[order]
    assert tally(values, chunk=50) == reference(values) == (5010, 5002, 5, [-1, 7, 2500, 4999, 10**12])


def test_the_tally_array_covers_only_ids_within_its_reach():
    counter = IdTally()
    counter.add(pa.array([0, 10**9, 10**9, 5]))
    assert counter.counts.size == 6 and counter.stash.size + sum(map(len, counter.stashed)) == 2
    assert counter.result() == (4, 3, 1, [10**9])
    counter.add(pa.array(np.arange(stream.ALLOWANCE - 3, stream.ALLOWANCE + 3)))  # as far as ALLOWANCE
    assert counter.counts.size == stream.ALLOWANCE
    assert counter.result() == (10, 9, 1, [10**9])


def test_the_tally_reaches_as_far_as_its_stash_would_cost(monkeypatch):
    monkeypatch.setattr(stream, "ALLOWANCE", 0)
    counter = IdTally()
    far = 400_000  # beyond 4 * 65546 + 65536 ids, within 8 * 65546 - 65536
    counter.add(pa.array([far - 1] * 10 + [far + i for i in range(ids.SPARSE_SLACK)]))  # stashed: too far yet
    assert counter.counts.size < far
    counter.add(pa.array([far - 1]))  # 8 bytes per stashed id now pay for reaching them
    assert counter.counts.size >= far + ids.SPARSE_SLACK and counter.stash.size == 0 and not counter.stashed
    assert counter.result() == (ids.SPARSE_SLACK + 11, ids.SPARSE_SLACK + 1, 1, [far - 1])


def test_the_tally_counts_an_id_repeated_within_one_batch():
    assert tally([3, 3, 3, 1], chunk=4) == (4, 2, 1, [3])


def test_the_tally_reports_the_smallest_repeated_ids_across_blocks(monkeypatch):
    monkeypatch.setattr(stream, "BLOCK", 4)
    values = list(range(100)) + [90, 3, 70, 50, 99, 30, 30, 11]
    assert tally(values, chunk=7) == reference(values) == (108, 100, 7, [3, 11, 30, 50, 70])


def test_the_tally_groups_ids_that_are_not_integers_as_they_come(monkeypatch):
    monkeypatch.setattr(stream, "BLOCK", 3)  # grouped again each time they have more than doubled
    values = [f"k{i % 13}" for i in range(60)] + ["z", None, "y", "y"]
    counter = IdTally()
    for start in range(0, len(values), 5):
        counter.add(pa.array(values[start:start + 5], pa.string()))
    assert counter.result() == reference(values) == (63, 15, 14, ["k0", "k1", "k10", "k11", "k12"])
    assert len(counter.others[0]) <= 30


SMALL_IDS = st.lists(st.one_of(st.none(), st.integers(min_value=-3, max_value=60),
                               st.integers(min_value=10**6, max_value=10**6 + 3)), max_size=40)


@PROPERTY
@given(values=SMALL_IDS, chunk=st.integers(min_value=1, max_value=9), slack=st.sampled_from([1, 8, 65536]))
def test_the_tally_counts_like_a_counter(values, chunk, slack):
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(stream, "BLOCK", 4)
        patched.setattr(stream, "SPARSE_SLACK", slack)
        patched.setattr(stream, "ALLOWANCE", 0)
        assert tally(values, chunk) == reference(values)


# --- any ids: streamed and whole-table verdicts agree -------------------------------------------


@PROPERTY
@given(truth=SMALL_IDS, output=SMALL_IDS, seed=st.integers(min_value=0, max_value=3))
def test_loss_and_duplicates_agree_streamed_on_any_small_ids(truth, output, seed):
    same_loss(id_table(truth), id_table(output), seed)
    same_duplicates(id_table(output), seed)


def test_the_hash_paths_agree_streamed(monkeypatch):
    monkeypatch.setattr(loss, "BLOCK", 2)  # the output's distinct ids are deduplicated again as they grow
    truth = id_table([0, 10**9, 2 * 10**9, 5, 6, 7])
    output = id_table([10**9, 10**9, 5, 7, None, -4, 6, 6])
    assert same_loss(truth, output).examples == [0, 2 * 10**9]
    assert same_duplicates(output).counts == {"output_records": 8, "duplicated_ids": 2, "extra_copies": 2}


def test_unsigned_ids_beyond_int64_agree_streamed():
    truth = id_table([0, 1, 2, 2**64 - 1], pa.uint64())
    output = id_table([0, 2, 2**64 - 1, 2**64 - 1, 2**63, None], pa.uint64())
    assert same_loss(truth, output).examples == [1]
    assert same_loss(id_table([0, 1, 2], pa.uint64()), output).examples == [1]
    assert same_duplicates(output).examples == [2**64 - 1]


def test_ids_that_are_not_integers_agree_streamed():
    output = id_table(["a", "b", "a", None, "c", "c", "c"], pa.string())
    assert same_duplicates(output).counts == {"output_records": 7, "duplicated_ids": 2, "extra_copies": 3}
    assert same_loss(id_table(["a", "d"], pa.string()), output).examples == ["d"]
    assert same_loss(id_table([1, 2, 3]), id_table(["1", "3"], pa.string())).examples == [2]


def test_output_ids_of_another_integer_type_agree_streamed(expected, damaged):
    output = id_table([3, 0, 0, 7], pa.int32())
    assert same_loss(id_table([0, 1, 2, 3, 3]), output).examples == [1, 2]
    assert same_duplicates(output).examples == [0]
    narrow = damaged.cast(OUTPUT_SCHEMA.set(0, pa.field("id", pa.int32())))
    for output in (narrow, batches(narrow)):  # left to the join, which refuses keys of two types either way
        with pytest.raises(pa.ArrowInvalid, match="Incompatible data types"):
            check_phantoms(expected, output)


def test_null_output_ids_are_joined_alike_streamed(expected):
    nulls = pa.Table.from_pylist([{"id": None, "payload": "p", "checksum": 1}], schema=OUTPUT_SCHEMA)
    output = pa.concat_tables([expected.select(COLUMNS), nulls, expected.select(COLUMNS).slice(3, 4)])
    assert same_phantoms(expected, output).counts == {"phantoms": 1, "corrupted": 0}


def test_expected_ids_out_of_order_are_joined_in_groups_alike(monkeypatch, expected, damaged):
    monkeypatch.setattr(phantoms, "SLICE", 5)
    shuffled = expected.take(list(range(1, 40)) + [0])
    twice = pa.concat_tables([damaged, damaged])
    want = check_phantoms(expected, twice)
    assert check_phantoms(shuffled, twice) == want and want.counts == {"phantoms": 8, "corrupted": 8}
    joins: list[int] = []
    join = phantoms.phantoms_by_join
    monkeypatch.setattr(phantoms, "phantoms_by_join", lambda e, o: joins.append(o.num_rows) or join(e, o))
    assert check_phantoms(shuffled, batches(twice)) == want
    assert len(joins) > 1 and all(rows >= 40 for rows in joins[:-1]) and sum(joins) == twice.num_rows


ROW = st.tuples(st.one_of(st.none(), st.integers(min_value=-2, max_value=9)),
                st.sampled_from(["same", "other", None]), st.sampled_from(["same", "other", None]))


@PROPERTY
@given(records=st.integers(min_value=0, max_value=8), rows=st.lists(ROW, max_size=25),
       shuffle=st.booleans(), seed=st.integers(min_value=0, max_value=3))
def test_phantoms_agree_streamed_on_any_output(expected, records, rows, shuffle, seed):
    truth = expected.select(COLUMNS).slice(0, records)
    if shuffle:
        truth = truth.take(np.random.default_rng(seed).permutation(records))
    want = {r["id"]: r for r in truth.to_pylist()}
    out = []
    for i, payload, crc in rows:
        real = want.get(i, {"payload": "x", "checksum": 0})
        out.append({"id": i, "payload": {"same": real["payload"], "other": "other", None: None}[payload],
                    "checksum": {"same": real["checksum"], "other": -1, None: None}[crc]})
    same_phantoms(truth, pa.Table.from_pylist(out, schema=OUTPUT_SCHEMA), seed)
