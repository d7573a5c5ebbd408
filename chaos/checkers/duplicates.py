"""Duplicates: output records whose id appears more than once. At least once allows them."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples


def check_duplicates(output: pa.Table, forbidden: bool) -> Verdict:
    counts_by_id = output.group_by("id").aggregate([("id", "count")])
    repeated = counts_by_id.filter(pc.greater(counts_by_id["id_count"], 1))
    extra = int(pc.sum(pc.subtract(repeated["id_count"], 1)).as_py() or 0)
    counts = {"output_records": output.num_rows, "duplicated_ids": repeated.num_rows, "extra_copies": extra}
    if repeated.num_rows == 0:
        return Verdict("duplicates", "pass", "no record appears twice", counts)
    status = "fail" if forbidden else "info"
    note = "" if forbidden else " (allowed by the guarantee)"
    return Verdict("duplicates", status, f"{repeated.num_rows} records appear more than once, "
                   f"{extra} extra copies{note}", counts, examples(repeated["id"]))
