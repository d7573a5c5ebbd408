"""The pipeline's progress over a run, read from its history: what liveness and fault traffic judge.

A checkpoint's progress is the sum of the integer leaves of its `positions` (offsets, row groups,
`next`; string leaves such as a Hudi instant are ignored; `{}` is 0). A committed checkpoint's
progress is that of the latest `checkpoint.persisted` of its id before the commit. When some
checkpoint's positions have no integer leaf at all, progress is opaque and only "a commit
happened" can be told.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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


@dataclass(frozen=True)
class Window:
    """One fault's span on the timeline (a crash point's is a moment)."""

    index: int
    start: float
    end: float
    what: str
    healed: bool = True
    """False for a fault still active when the history ends (its window runs to the end)."""


@dataclass(frozen=True)
class RunTimeline:
    persisted_ts: pa.Array
    persisted: pa.Array
    commit_ts: pa.Array
    committed: pa.Array
    """The progress of each committed checkpoint (null where no persist preceded the commit)."""
    commit_known: pa.Array
    faults: list[Window]
    """Injected faults, by `index`; healed or open until the end of the history."""
    crashes: list[Window]
    ready: float | None
    """When the whole pipeline was first ready."""
    drained: float | None
    last: float

    @property
    def opaque(self) -> bool:
        return bool(self.persisted.null_count)

    def committed_by(self, moment: float) -> int | None:
        """The furthest progress committed at or before `moment` (None before the first commit)."""
        return pc.max(self.committed.filter(pc.less_equal(self.commit_ts, moment))).as_py()

    def final(self) -> int | None:
        return pc.max(self.committed).as_py()


def drain_seconds(history: list[dict[str, Any]], checkpoint_id: int) -> float | None:
    """From the workload's end to the commit of `checkpoint_id` (the one that covers the input), or
    0 if it was committed before the end; None if either is missing from the history."""
    ends = [float(e["ts"]) for e in history if e.get("event") == Event.WORKLOAD_END]
    commits = [float(e["ts"]) for e in history
               if e.get("event") == Event.CHECKPOINT_COMMITTED and e.get("checkpoint_id") == checkpoint_id]
    if not ends or not commits:
        return None
    return max(0.0, commits[0] - ends[-1])


def timeline(history: list[dict[str, Any]]) -> RunTimeline:
    persisted: list[tuple[float, int | None]] = []
    latest: dict[Any, int | None] = {}  # checkpoint id -> progress of its latest persist
    commits: list[tuple[float, int | None, bool]] = []
    injects: dict[Any, tuple[float, str]] = {}
    heals: dict[Any, float] = {}
    crashes: list[Window] = []
    ready = drained = None
    last = 0.0
    for e in sorted((e for e in history if isinstance(e.get("ts"), (int, float))), key=lambda e: e["ts"]):
        ts, kind = float(e["ts"]), e.get("event")
        last = ts
        if kind == Event.FAULT_INJECT:
            injects.setdefault(e.get("index"), (ts, f"{e.get('kind')} {e.get('target')}"))
        elif kind == Event.FAULT_HEAL:
            heals.setdefault(e.get("index"), ts)
        elif kind == Event.CRASH:
            crashes.append(Window(len(crashes), ts, ts, f"crash of {e.get('process')} at {e.get('point')}"))
        elif kind == Event.CHECKPOINT_PERSISTED:
            value = progress_of(e.get("positions", {}))
            persisted.append((ts, value))
            latest[e.get("checkpoint_id")] = value
        elif kind == Event.CHECKPOINT_COMMITTED:
            cid = e.get("checkpoint_id")
            commits.append((ts, latest.get(cid), cid in latest))
        elif kind == Event.PIPELINE_READY and ready is None:
            ready = ts
        elif kind == Event.RUN_DRAINED and drained is None:
            drained = ts
    faults = [Window(i, start, heals.get(i, last), what, i in heals) for i, (start, what) in injects.items()]
    return RunTimeline(
        persisted_ts=pa.array([t for t, _ in persisted], pa.float64()),
        persisted=pa.array([v for _, v in persisted], PROGRESS),
        commit_ts=pa.array([t for t, _, _ in commits], pa.float64()),
        committed=pa.array([v for _, v, _ in commits], PROGRESS),
        commit_known=pa.array([k for _, _, k in commits], pa.bool_()),
        faults=faults, crashes=crashes, ready=ready, drained=drained, last=last)
