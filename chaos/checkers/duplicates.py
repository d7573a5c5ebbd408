"""Duplicates: output records whose id appears more than once. At least once allows them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.ids import as_numpy, first_ids
from chaos.checkers.verdict import Verdict, examples

Found = tuple[int, int, list[int]]
"""(ids that appear more than once, the extra copies beyond the first, the smallest such ids)."""


def check_duplicates(output: pa.Table, forbidden: bool) -> Verdict:
    found = duplicates_by_position(output)
    repeated, extra, example_ids = found if found is not None else duplicates_by_hash(output)
    counts = {"output_records": output.num_rows, "duplicated_ids": repeated, "extra_copies": extra}
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
