"""No phantoms or corruption: every output record was produced, and its payload checksum matches.

The generated record's checksum is the CRC32 of its payload, so an output payload equal to the
generated one has a matching CRC32 by construction: comparing payloads (vectorised) replaces
recomputing the CRC32 of every output row in Python, and is stricter (it also catches a changed
payload whose CRC32 happens to collide).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.ids import as_numpy, smallest_ids
from chaos.checkers.verdict import Verdict, examples

Found = tuple[int, int, list[int]]
"""(output rows never produced, output rows whose payload or checksum differs, the smallest such ids)."""
SLICE, THREADS = 1 << 18, 8
"""The fast path compares the output SLICE rows at a time, on up to THREADS threads (Arrow's `take`
runs on one core and releases the GIL): the expected rows taken for a slice stay small (about 10 MB
at 32-byte payloads), and so do the slices in flight."""


def check_phantoms(expected: pa.Table, output: pa.Table) -> Verdict:
    found = phantoms_by_position(expected, output)
    phantoms, corrupted, example_ids = found if found is not None else phantoms_by_join(expected, output)
    counts = {"phantoms": phantoms, "corrupted": corrupted}
    if phantoms == 0 and corrupted == 0:
        return Verdict("no-phantoms", "pass", "every output record was produced and is intact", counts)
    return Verdict("no-phantoms", "fail", f"{phantoms} records were never produced, {corrupted} have a bad checksum",
                   counts, example_ids)


def phantoms_by_position(expected: pa.Table, output: pa.Table) -> Found | None:
    """Expected ids exactly 0..N-1 in order: the expected row of output id i is row i, so `take` by id
    replaces the join, and an id outside 0..N-1 is a phantom. None when the expected ids are not
    0..N-1 in order, or the output ids are not integers of the same type without nulls."""
    columns = ["id", "payload", "checksum"]
    expected, output, rows = expected.select(columns), output.select(columns), expected.num_rows
    expected_ids = as_numpy(expected["id"], dense=True)
    if expected_ids is None or not np.array_equal(expected_ids, np.arange(rows)):
        return None
    if output["id"].type != expected["id"].type or (ids := as_numpy(output["id"], dense=False)) is None:
        return None
    phantom = (ids < 0) | (ids >= rows)
    corrupted = np.zeros(ids.size, dtype=bool)
    if rows:
        starts = range(0, ids.size, SLICE)
        with ThreadPoolExecutor(min(THREADS, pa.cpu_count())) as pool:
            differ = pool.map(lambda start: _differ(expected, output, ids, phantom, start), starts)
            for start, part in zip(starts, differ):
                corrupted[start:start + SLICE] = part & ~phantom[start:start + SLICE]
    return int(np.count_nonzero(phantom)), int(np.count_nonzero(corrupted)), smallest_ids(ids[phantom | corrupted])


def _differ(expected: pa.Table, output: pa.Table, ids: np.ndarray, phantom: np.ndarray, start: int) -> np.ndarray:
    """Which of the SLICE output rows from `start` differ from the expected row of their id, in payload or
    checksum (a phantom row is compared with expected row 0, and its answer ignored)."""
    at = pa.array(np.where(phantom[start:start + SLICE], 0, ids[start:start + SLICE]))
    part = output.slice(start, SLICE)
    same_payload = pc.fill_null(pc.equal(part["payload"], expected["payload"].take(at)), False)
    same_checksum = pc.fill_null(pc.equal(part["checksum"], expected["checksum"].take(at)), False)
    return ~pc.and_(same_payload, same_checksum).to_numpy()


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
