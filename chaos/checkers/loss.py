"""No loss: every record the source really holds is in the committed output."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples


def check_loss(truth: pa.Table, output: pa.Table, required: bool = True) -> Verdict:
    truth_ids = pc.unique(truth["id"])
    missing = truth_ids.filter(pc.invert(pc.is_in(truth_ids, value_set=pc.unique(output["id"]))))
    counts = {"source_records": len(truth_ids), "lost": len(missing)}
    if len(missing) == 0:
        return Verdict("no-loss", "pass", f"all {len(truth_ids)} source records are in the output", counts)
    status = "fail" if required else "info"
    return Verdict("no-loss", status, f"{len(missing)} of {len(truth_ids)} source records are missing from the output",
                   counts, examples(missing))
