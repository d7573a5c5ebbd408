"""Liveness: progress resumes within a bound after each fault heals.

For each injected fault that healed, progress has resumed at the first `checkpoint.committed` at or
after the heal whose progress (`chaos.checkers.progress`) went beyond every checkpoint persisted
before the heal. With opaque progress, or nothing persisted before the heal, any commit after the
heal is progress. A fault needs no progress when the run had drained before the heal, or when the
run drained (`run.drained`) with no commit after the heal advancing: the drain proves a committed
checkpoint covers the whole input, so the input was already fully committed at the heal. The
recovery time of such a fault is 0.

A hanging transaction (`chaos.checkers.hanging`) fails liveness whatever the faults did, and is
named as such: read_committed readers stuck behind an open transaction are not a slow drain.

Whether the faults met any traffic at all is a question of its own (`chaos.checkers.traffic`).
Examples are the `index` of each fault that failed, not record ids.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.hanging import describe_hangs, hanging_transactions
from chaos.checkers.progress import RunTimeline, timeline
from chaos.checkers.verdict import Verdict, examples


def _recovery(run: RunTimeline, heal: float) -> float | None:
    """Seconds from the heal to resumed progress; 0.0 if none was needed; None if it never resumed."""
    if run.drained is not None and run.drained <= heal:
        return 0.0
    baseline = pc.max(run.persisted.filter(pc.less(run.persisted_ts, heal))).as_py()
    after = pc.greater_equal(run.commit_ts, heal)
    if baseline is not None and not run.opaque:
        advanced = pc.greater(pc.fill_null(run.committed, baseline), baseline)
        after = pc.and_(pc.and_(after, run.commit_known), advanced)
    first = pc.min(run.commit_ts.filter(after)).as_py()
    if first is not None:
        return first - heal
    return 0.0 if run.drained is not None else None


def check_liveness(history: list[dict[str, Any]], bound_s: float) -> Verdict:
    run = timeline(history)
    times = {w.index: _recovery(run, w.end) for w in run.faults if w.healed}
    unrecovered = [i for i, t in times.items() if t is None]
    slow = [i for i, t in times.items() if t is not None and t > bound_s]
    worst = max((t for t in times.values() if t is not None), default=0.0)
    counts = {"faults": len(run.faults), "worst_recovery_ms": int(round(worst * 1000)),
              "unrecovered": len(unrecovered)}
    hangs = hanging_transactions(history)
    if hangs:
        counts["hanging_transactions"] = len(hangs)
    problems = [f"a hanging transaction: {describe_hangs(hangs)}"] if hangs else []
    if unrecovered:
        problems.append(f"{len(unrecovered)} faults were never followed by progress after they healed")
    if slow:
        problems.append(f"{len(slow)} faults took longer than {bound_s:g}s to recover (worst {worst:.1f}s)")
    if problems:
        bad = sorted({i for i in unrecovered + slow if isinstance(i, int)})
        return Verdict("liveness", "fail", "; ".join(problems), counts, examples(pa.array(bad, pa.int64())))
    if not run.faults:
        return Verdict("liveness", "pass", "no faults to recover from", counts)
    return Verdict("liveness", "pass", f"progress resumed within {bound_s:g}s of every heal (worst {worst:.1f}s)",
                   counts)
