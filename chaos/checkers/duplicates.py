"""Duplicates: output records whose id appears more than once. At least once allows them."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.ids import as_numpy, first_ids
from chaos.checkers.stream import IdTally, Output, SortedIds, sort_ids
from chaos.checkers.verdict import Verdict, examples

Found = tuple[int, int, list[int]]
"""(ids that appear more than once, the extra copies beyond the first, the smallest such ids)."""


def check_duplicates(output: Output, forbidden: bool) -> Verdict:
    if isinstance(output, pa.Table):
        rows = output.num_rows
        found = duplicates_by_position(output)
        repeated, extra, example_ids = found if found is not None else duplicates_by_hash(output)
    else:
        rows, (repeated, extra, example_ids) = duplicates_in_stream(output)
    counts = {"output_records": rows, "duplicated_ids": repeated, "extra_copies": extra}
    if repeated == 0:
        return Verdict("duplicates", "pass", "no record appears twice", counts)
    status = "fail" if forbidden else "info"
    note = "" if forbidden else " (allowed by the guarantee)"
    return Verdict("duplicates", status, f"{repeated} records appear more than once, "
                   f"{extra} extra copies{note}", counts, example_ids)


def duplicates_by_position(output: pa.Table) -> Found | None:
    """Dense ids: one `np.bincount` of the output ids. None when they are not dense integers without nulls."""
    ids = as_numpy(output["id"], dense=True)
    if ids is None:
        return None
    copies = np.bincount(ids)
    repeated = copies > 1
    return int(np.count_nonzero(repeated)), ids.size - int(np.count_nonzero(copies)), first_ids(repeated)


def duplicates_by_hash(output: pa.Table) -> Found:
    """Any ids: group by id and count (a null id is never counted as a copy)."""
    counts_by_id = output.group_by("id").aggregate([("id", "count")])
    repeated = counts_by_id.filter(pc.greater(counts_by_id["id_count"], 1))
    extra = int(pc.sum(pc.subtract(repeated["id_count"], 1)).as_py() or 0)
    return repeated.num_rows, extra, examples(repeated["id"])


def duplicates_in_stream(batches: Iterable[pa.RecordBatch]) -> tuple[int, Found]:
    """The output as a stream of record batches, read once: its row count, and its ids tallied in one
    byte per id (`IdTally`); the extra copies are the ids counted minus the distinct ids. Each batch's
    ids are sorted on a second thread while the previous batch's are counted (both release the GIL)."""
    tally, rows = IdTally(), 0
    with ThreadPoolExecutor(1) as pool:
        sorted_ids: Future[SortedIds] | None = None
        for batch in batches:
            rows += batch.num_rows
            following = pool.submit(sort_ids, batch.column("id"))
            if sorted_ids is not None:
                tally.add_sorted(*sorted_ids.result())
            sorted_ids = following
        if sorted_ids is not None:
            tally.add_sorted(*sorted_ids.result())
    counted, distinct, repeated, example_ids = tally.result()
    return rows, (repeated, counted - distinct, example_ids)
