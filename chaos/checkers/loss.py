"""No loss: every record the source really holds is in the committed output."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.ids import as_numpy, first_ids, present
from chaos.checkers.verdict import Verdict, examples

Found = tuple[int, int, list[int]]
"""(distinct source records, how many of them are lost, the smallest lost ids)."""


def check_loss(truth: pa.Table, output: pa.Table, required: bool = True) -> Verdict:
    found = lost_by_position(truth, output)
    source, lost, example_ids = found if found is not None else lost_by_hash(truth, output)
    counts = {"source_records": source, "lost": lost}
    if lost == 0:
        return Verdict("no-loss", "pass", f"all {source} source records are in the output", counts)
    status = "fail" if required else "info"
    return Verdict("no-loss", status, f"{lost} of {source} source records are missing from the output",
                   counts, example_ids)


def lost_by_position(truth: pa.Table, output: pa.Table) -> Found | None:
    """Dense ids: mark the source's and the output's ids in two masks indexed by id, one pass each.
    None when the source's ids are not dense, or either side's are not integers or hold a null."""
    truth_ids = as_numpy(truth["id"], dense=True)
    output_ids = as_numpy(output["id"], dense=False)
    if truth_ids is None or output_ids is None:
        return None
    size = int(truth_ids.max()) + 1 if truth_ids.size else 0
    in_truth = present(truth_ids, size)
    lost = in_truth & ~present(output_ids, size)
    return int(np.count_nonzero(in_truth)), int(np.count_nonzero(lost)), first_ids(lost)


def lost_by_hash(truth: pa.Table, output: pa.Table) -> Found:
    """Any ids: the distinct source ids that are not in the set of output ids."""
    truth_ids = pc.unique(truth["id"])
    missing = truth_ids.filter(pc.invert(pc.is_in(truth_ids, value_set=pc.unique(output["id"]))))
    return len(truth_ids), len(missing), examples(missing) if len(missing) else []
