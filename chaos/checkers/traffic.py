"""Faults met traffic: each fault struck a pipeline that was running and had work to do.

A fault that lands before the pipeline is ready (its workers still joining), or after everything
was already committed, proves nothing: every invariant passes, and the run would be a vacuous pass
(Redpanda's CheckProgressDuringFault; Antithesis's "sometimes": the interesting moment must have
been reached). Only the pipeline's own progress counts, never the producer's.

A fault's window met traffic when the pipeline had been ready by its end, and either a checkpoint
committed inside it went further than the one before it started, or input was left to process when
it started (the committed progress then was below what the run committed in the end): a fault that
blocks all progress while input waits is the most interesting kind. With no injected fault, each
fired crash point is a window of its own, at its moment. A window that met no traffic makes the run
inconclusive, never a violation, with the fault named.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.progress import RunTimeline, Window, timeline
from chaos.checkers.verdict import Verdict, examples


def _why_quiet(run: RunTimeline, window: Window, crash: bool) -> str | None:
    """Why the window met no pipeline traffic, or None if it did."""
    if not crash and (run.ready is None or run.ready > window.end):
        return "it was over before the pipeline was ready"
    before = run.committed_by(window.start)
    inside = pc.and_(pc.greater_equal(run.commit_ts, window.start), pc.less_equal(run.commit_ts, window.end))
    if run.opaque:  # only "a commit happened" can be told: one at or after the start means work was left
        later = pc.any(pc.greater_equal(run.commit_ts, window.start)).as_py()
        return None if later else "the pipeline committed nothing from then on"
    moved = run.committed.filter(inside)
    furthest = pc.max(moved).as_py()  # None when every commit inside is of unknown progress
    if len(moved) and (before is None or (furthest is not None and furthest > before)):
        return None
    final = run.final()
    if final is not None and (before is None or before < final):
        return None  # input waited while the fault held the pipeline back
    return "the pipeline made no progress and had nothing left to process"


def quiet_faults(history: list[dict[str, Any]]) -> dict[int, str]:
    """Each injected fault that met no pipeline traffic, by index, with why (for the timeline)."""
    run = timeline(history)
    return {w.index: why for w in run.faults if (why := _why_quiet(run, w, crash=False)) is not None}


def check_fault_traffic(history: list[dict[str, Any]]) -> Verdict:
    run = timeline(history)
    crash = not run.faults
    windows = run.faults or run.crashes
    quiet = [(w, why) for w in windows if (why := _why_quiet(run, w, crash)) is not None]
    counts = {"faults": len(windows), "faults_without_traffic": len(quiet)}
    if not windows:
        return Verdict("faults-met-traffic", "pass", "no faults", counts)
    if quiet:
        named = "; ".join(f"{'crash' if crash else 'faults'}[{w.index}] ({w.what}): {why}" for w, why in quiet)
        return Verdict("faults-met-traffic", "inconclusive", f"{len(quiet)} of {len(windows)} faults met no pipeline "
                       f"traffic, so they prove nothing: {named}", counts,
                       examples(pa.array([w.index for w, _ in quiet], pa.int64())))
    return Verdict("faults-met-traffic", "pass", f"each of {len(windows)} faults struck a running pipeline "
                   "with work to do", counts)
