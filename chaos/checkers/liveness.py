"""Liveness: progress resumes within a bound after each fault heals, and the faults met real traffic.

(a) Recovery. For each `fault.inject` with a matching `fault.heal` (same `index`), progress has
resumed at the first `checkpoint.committed` at or after the heal whose checkpoint's positions
(from the latest `checkpoint.persisted` of that `checkpoint_id` before the commit) advanced beyond
every checkpoint persisted before the heal. A checkpoint's progress is the sum of the integer
leaves of its `positions` (offsets, row groups, `next`; string leaves such as a Hudi instant are
ignored; `{}` is 0). When some checkpoint's positions have no integer leaf at all, or nothing was
persisted before the heal, any commit after the heal is progress. A fault needs no progress when
the run had drained before the heal, or when the run drained (`run.drained`) without any commit
after the heal advancing: the drain proves a committed checkpoint covers the whole input, so the
input was already fully committed at the heal. The recovery time of such a fault is 0.

(b) Real traffic (Redpanda's CheckProgressDuringFault). A fault window is inject..heal (..the end
of the history if never healed). It saw traffic when it overlaps [workload.start, workload.end]
(workload.end missing: open-ended), when a checkpoint was persisted inside it, or, with no producer
(the source is read directly), when a checkpoint after its start went further than the last before. If every window
saw none, the run proved nothing and fails. `crash` events count as zero-length windows only when
no fault was injected; a zero-length window cannot contain a persist, so for a crash the
checkpoint test is: a checkpoint persisted after the crash advanced beyond the last one persisted
before it (the pipeline still had input in flight when it crashed).

Events are parsed with one Python pass (the input is a list of dicts); the per-fault searches are
vectorised with pyarrow.compute over the commit timeline. Examples are the `index` of each fault
that failed (for crash windows, the crash's ordinal in the history), not record ids.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples
from drivers.sdk.events import Event

PROGRESS = pa.decimal128(38, 0)
"""Progress sums: an Iceberg `snapshot_id` leaf alone is near 2**63, so two of them overflow int64."""


def progress_of(positions: Any) -> int | None:
    """Sum of the integer leaves of a positions document; None if it has leaves but no integer one."""
    total, integers, leaves = 0, 0, 0
    stack = [positions]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        else:
            leaves += 1
            if isinstance(node, int) and not isinstance(node, bool):
                total += node
                integers += 1
    return total if integers or not leaves else None


def check_liveness(history: list[dict[str, Any]], bound_s: float) -> Verdict:
    injects: dict[Any, float] = {}
    heals: dict[Any, float] = {}
    crashes: list[float] = []
    persisted: list[tuple[float, int | None]] = []
    latest_progress: dict[Any, int | None] = {}  # checkpoint id -> progress of its latest persist
    commits: list[tuple[float, int | None, bool]] = []  # ts, progress, known (a persist preceded it)
    workload_start = workload_end = drained = None
    last_ts = 0.0
    for e in sorted((e for e in history if isinstance(e.get("ts"), (int, float))), key=lambda e: e["ts"]):
        ts, kind = float(e["ts"]), e.get("event")
        last_ts = ts
        if kind == Event.FAULT_INJECT:
            injects.setdefault(e.get("index"), ts)
        elif kind == Event.FAULT_HEAL:
            heals.setdefault(e.get("index"), ts)
        elif kind == Event.CRASH:
            crashes.append(ts)
        elif kind == Event.CHECKPOINT_PERSISTED:
            value = progress_of(e.get("positions", {}))
            persisted.append((ts, value))
            latest_progress[e.get("checkpoint_id")] = value
        elif kind == Event.CHECKPOINT_COMMITTED:
            cid = e.get("checkpoint_id")
            commits.append((ts, latest_progress.get(cid), cid in latest_progress))
        elif kind == Event.WORKLOAD_START and workload_start is None:
            workload_start = ts
        elif kind == Event.WORKLOAD_END:
            workload_end = ts
        elif kind == Event.RUN_DRAINED and drained is None:
            drained = ts

    p_ts = pa.array([t for t, _ in persisted], pa.float64())
    p_val = pa.array([v for _, v in persisted], PROGRESS)
    c_ts = pa.array([t for t, _, _ in commits], pa.float64())
    c_val = pa.array([v for _, v, _ in commits], PROGRESS)
    c_known = pa.array([k for _, _, k in commits], pa.bool_())
    p_opaque = bool(p_val.null_count)  # some checkpoint's positions carry no integer

    def recovery(heal: float) -> float | None:
        """Seconds from the heal to resumed progress; 0.0 if none was needed; None if it never resumed."""
        if drained is not None and drained <= heal:
            return 0.0
        before = p_val.filter(pc.less(p_ts, heal))
        baseline = pc.max(before).as_py()
        after = pc.greater_equal(c_ts, heal)
        if baseline is not None and not p_opaque:
            after = pc.and_(pc.and_(after, c_known), pc.greater(pc.fill_null(c_val, baseline), baseline))
        first = pc.min(c_ts.filter(after)).as_py()
        if first is not None:
            return first - heal
        return 0.0 if drained is not None else None

    healed = [i for i in heals if i in injects]
    times = {i: recovery(heals[i]) for i in healed}
    unrecovered = [i for i, t in times.items() if t is None]
    slow = [i for i, t in times.items() if t is not None and t > bound_s]
    worst = max((t for t in times.values() if t is not None), default=0.0)

    def traffic(start: float, end: float) -> bool:
        if workload_start is not None and start <= (workload_end if workload_end is not None else last_ts) \
                and end >= workload_start:
            return True
        if start < end and pc.any(pc.and_(pc.greater_equal(p_ts, start), pc.less_equal(p_ts, end))).as_py():
            return True
        if start < end and workload_start is not None:
            return False
        # A crash, or a fault with no producer (the source is read directly): the job still had input
        # if a checkpoint after the fault's start went further than the last one before it.
        earlier = p_val.filter(pc.less(p_ts, start))
        later = p_val.filter(pc.greater(p_ts, start))
        if len(later) == 0:
            return False
        if p_opaque or len(earlier) == 0:
            return True
        return pc.max(later).as_py() > pc.max(earlier).as_py()

    if injects:
        windows = {i: (t, heals.get(i, last_ts)) for i, t in injects.items()}
    else:
        windows = {n: (t, t) for n, t in enumerate(crashes)}
    quiet = [i for i, (start, end) in windows.items() if not traffic(start, end)]

    counts = {"faults": len(windows), "worst_recovery_ms": int(round(worst * 1000)),
              "faults_without_traffic": len(quiet), "unrecovered": len(unrecovered)}
    problems = []
    if unrecovered:
        problems.append(f"{len(unrecovered)} faults were never followed by progress after they healed")
    if slow:
        problems.append(f"{len(slow)} faults took longer than {bound_s:g}s to recover (worst {worst:.1f}s)")
    if windows and len(quiet) == len(windows):
        problems.append(f"no traffic during the faults (none of {len(windows)} saw records produced "
                        f"or a checkpoint persisted)")
    if problems:
        bad = sorted({i for i in unrecovered + slow + (quiet if len(quiet) == len(windows) else [])
                      if isinstance(i, int)})
        return Verdict("liveness", "fail", "; ".join(problems), counts, examples(pa.array(bad, pa.int64())))
    if not windows:
        return Verdict("liveness", "pass", "no faults to recover from", counts)
    return Verdict("liveness", "pass", f"progress resumed within {bound_s:g}s of every heal "
                   f"(worst {worst:.1f}s), and the faults met traffic", counts)
