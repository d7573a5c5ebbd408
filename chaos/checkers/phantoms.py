"""No phantoms or corruption: every output record was produced, and its payload checksum matches.

The generated record's checksum is the CRC32 of its payload, so an output payload equal to the
generated one has a matching CRC32 by construction: comparing payloads (vectorised) replaces
recomputing the CRC32 of every output row in Python, and is stricter (it also catches a changed
payload whose CRC32 happens to collide).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.ids import as_numpy, in_order, merge_smallest, smallest_ids
from chaos.checkers.stream import Output
from chaos.checkers.verdict import Verdict, examples

Found = tuple[int, int, list[int]]
"""(output rows never produced, output rows whose payload or checksum differs, the smallest such ids)."""
COLUMNS = ["id", "payload", "checksum"]
SLICE, THREADS = 1 << 18, 8
"""The fast path compares the output SLICE rows at a time, on up to THREADS threads (Arrow's `take`
runs on one core and releases the GIL): the expected rows taken for a slice stay small (about 10 MB
at 32-byte payloads), and so do the slices in flight (at most two per thread)."""
Part = tuple[pa.Table | pa.RecordBatch, np.ndarray]
"""A slice of the output and its ids as int64."""


def check_phantoms(expected: pa.Table, output: Output) -> Verdict:
    if isinstance(output, pa.Table):
        found = phantoms_by_position(expected, output)
        phantoms, corrupted, example_ids = found if found is not None else phantoms_by_join(expected, output)
    else:
        phantoms, corrupted, example_ids = phantoms_in_stream(expected, output)
    counts = {"phantoms": phantoms, "corrupted": corrupted}
    if phantoms == 0 and corrupted == 0:
        return Verdict("no-phantoms", "pass", "every output record was produced and is intact", counts)
    return Verdict("no-phantoms", "fail", f"{phantoms} records were never produced, {corrupted} have a bad checksum",
                   counts, example_ids)


def phantoms_by_position(expected: pa.Table, output: pa.Table) -> Found | None:
    """Expected ids exactly 0..N-1 in order: the expected row of output id i is row i, so `take` by id
    replaces the join, and an id outside 0..N-1 is a phantom. None when the expected ids are not
    0..N-1 in order, or the output ids are not integers of the same type without nulls."""
    expected, output = expected.select(COLUMNS), output.select(COLUMNS)
    if not in_order(expected["id"]):
        return None
    if output["id"].type != expected["id"].type or (ids := as_numpy(output["id"], dense=False)) is None:
        return None
    return compare_by_position(expected, ((output.slice(start, SLICE), ids[start:start + SLICE])
                                          for start in range(0, len(ids), SLICE)))


def phantoms_in_stream(expected: pa.Table, batches: Iterable[pa.RecordBatch]) -> Found:
    """The output as a stream of record batches, read once, each compared by position when the whole
    table would be. A batch that cannot be (the expected ids are not 0..N-1 in order, or its ids hold
    a null) waits to be joined, in groups of at least as many rows as are expected, so that each
    join's hash table over the expected rows serves as many output rows as it costs."""
    expected = expected.select(COLUMNS)
    by_position = in_order(expected["id"])
    waiting: list[pa.RecordBatch] = []
    found: list[Found] = []

    def comparable() -> Iterator[Part]:
        for batch in batches:
            part = batch.select(COLUMNS)
            same_type = part.schema.field("id").type == expected.schema.field("id").type
            ids = as_numpy(part.column("id"), dense=False) if by_position and same_type else None
            if ids is not None:
                yield from ((part.slice(start, SLICE), ids[start:start + SLICE])
                            for start in range(0, part.num_rows, SLICE))
                continue
            waiting.append(part)
            if sum(b.num_rows for b in waiting) >= max(expected.num_rows, SLICE):
                found.append(phantoms_by_join(expected, pa.Table.from_batches(waiting)))
                waiting.clear()

    compared = compare_by_position(expected, comparable())  # joins the batches it cannot compare as it goes
    if waiting:
        found.append(phantoms_by_join(expected, pa.Table.from_batches(waiting)))
    return total([compared, *found])


def compare_by_position(expected: pa.Table, parts: Iterable[Part]) -> Found:
    """Compare each part with the expected rows of its ids (expected ids 0..N-1 in order), on a pool of
    threads with at most two parts per thread in flight."""
    rows, workers = expected.num_rows, min(THREADS, pa.cpu_count())
    values: list[pa.Array] = []  # the expected payloads and checksums, once there is a part to compare
    found: list[Found] = []
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[Found]] = deque()
        for part, ids in parts:
            values = values or [one_array(expected["payload"]), one_array(expected["checksum"])]
            pending.append(pool.submit(_compare, *values, rows, part, ids))
            if len(pending) > 2 * workers:
                found.append(pending.popleft().result())
        found.extend(future.result() for future in pending)
    return total(found)


def _compare(payloads: pa.Array, checksums: pa.Array, rows: int, part: pa.Table | pa.RecordBatch,
             ids: np.ndarray) -> Found:
    """A part's phantoms (ids outside 0..rows-1) and corrupted rows (payload or checksum unlike the
    expected row of their id; a phantom is compared with expected row 0, and its answer ignored)."""
    phantom = (ids < 0) | (ids >= rows)
    corrupted = np.zeros(ids.size, dtype=bool)
    if rows:
        at = pa.array(np.where(phantom, 0, ids))
        same_payload = pc.fill_null(pc.equal(part.column("payload"), payloads.take(at)), False)
        same_checksum = pc.fill_null(pc.equal(part.column("checksum"), checksums.take(at)), False)
        corrupted = ~np.asarray(pc.and_(same_payload, same_checksum)) & ~phantom
    return int(np.count_nonzero(phantom)), int(np.count_nonzero(corrupted)), smallest_ids(ids[phantom | corrupted])


def one_array(column: pa.ChunkedArray) -> pa.Array:
    """A column as one array: `take` from a column of several chunks concatenates them on every call."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def total(found: Iterable[Found]) -> Found:
    """The counts and examples of several parts of the output, as if found at once."""
    phantoms = corrupted = 0
    example_ids: list[int] = []
    for part_phantoms, part_corrupted, part_examples in found:
        phantoms, corrupted = phantoms + part_phantoms, corrupted + part_corrupted
        example_ids = merge_smallest(example_ids, part_examples)
    return phantoms, corrupted, example_ids


def phantoms_by_join(expected: pa.Table, output: pa.Table) -> Found:
    """Any ids: phantoms are output ids missing from the expected ids; corruption is found on the inner
    join of the output with the expected rows on id."""
    phantom = output.filter(pc.invert(pc.is_in(output["id"], value_set=expected["id"])))
    joined = output.select(["id", "payload", "checksum"]).join(
        expected.select(["id", "payload", "checksum"]).rename_columns(["id", "expected_payload", "expected_checksum"]),
        "id", join_type="inner")
    same_payload = pc.fill_null(pc.equal(joined["payload"], joined["expected_payload"]), False)
    same_checksum = pc.fill_null(pc.equal(joined["checksum"], joined["expected_checksum"]), False)
    corrupted = joined.filter(pc.invert(pc.and_(same_payload, same_checksum)))
    bad_ids = pa.concat_arrays([phantom["id"].combine_chunks(), corrupted["id"].combine_chunks()])
    return phantom.num_rows, corrupted.num_rows, examples(pc.unique(bad_ids)) if len(bad_ids) else []
