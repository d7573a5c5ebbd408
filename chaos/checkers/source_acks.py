"""Source lost acknowledged writes: an acked produce that the topic does not hold.

This is the source's anomaly, not the pipeline's, so it is reported on its own. Indeterminate
produces (Jepsen's `:info`) are counted by whether they landed, and never fail the run. A run that
forces an unclean leader election expects to lose some: its loss is reported, as `info`.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples
from chaos.workload.producer import ACKED, FAILED, INDETERMINATE


def check_source_acks(outcomes: pa.Table, truth: pa.Table, expected: str | None = None) -> Verdict:
    """`expected`: why this run may lose acknowledged writes by design (then a loss is `info`)."""
    in_topic = pc.is_in(outcomes["id"], value_set=truth["id"])
    def ids(status: str, present: bool) -> pa.ChunkedArray | pa.Array:
        mask = pc.and_(pc.equal(outcomes["status"], status), in_topic if present else pc.invert(in_topic))
        return outcomes["id"].filter(mask)
    lost = ids(ACKED, False)
    counts = {
        "acked": int(pc.sum(pc.equal(outcomes["status"], ACKED)).as_py() or 0),
        "acked_missing": len(lost),
        "indeterminate_landed": len(ids(INDETERMINATE, True)),
        "indeterminate_missing": len(ids(INDETERMINATE, False)),
        "failed_landed": len(ids(FAILED, True)),
    }
    if len(lost) == 0:
        return Verdict("source-lost-acked-writes", "pass", f"all {counts['acked']} acknowledged produces are in the topic", counts)
    if expected is not None:
        return Verdict("source-lost-acked-writes", "info", f"{len(lost)} acknowledged produces are missing from "
                       f"the topic: an expected loss, after {expected}", counts, examples(lost))
    return Verdict("source-lost-acked-writes", "fail",
                   f"{len(lost)} acknowledged produces are missing from the topic", counts, examples(lost))
