"""Holds a finished run to its invariants: which checkers apply, and what each is given.

Every checker is a pure function that returns a `Verdict`; this module only decides which of them
the experiment calls for (`CHECKS`, one entry per invariant, read by `chaos validate --show` too)
and feeds them the run's evidence: the source's ground truth, the output read back independently,
the producer's outcomes, what the visibility probe saw, and the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.coverage import covering_units
from chaos.checkers.duplicates import check_duplicates
from chaos.checkers.hanging import describe_hangs, hanging_transactions
from chaos.checkers.late import check_late_events
from chaos.checkers.liveness import check_liveness
from chaos.checkers.loss import check_loss
from chaos.checkers.order import check_key_order
from chaos.checkers.orphans import check_orphans
from chaos.checkers.phantoms import check_phantoms
from chaos.checkers.polls import (
    check_duplicate_deliveries,
    check_lost_writes,
    check_monotonic_polls,
    check_poll_skips,
    poll_observations,
)
from chaos.checkers.progress import timeline
from chaos.checkers.reads import (
    check_aborted_reads,
    check_monotonic_reads,
    check_premature_reads,
)
from chaos.checkers.schema import check_schema
from chaos.checkers.source_acks import check_source_acks
from chaos.checkers.traffic import check_fault_traffic
from chaos.checkers.verdict import Verdict
from chaos.checkers.visibility import check_atomic_visibility, check_prefix
from chaos.experiment import Experiment
from chaos.matrix import Guarantee
from chaos.sides.base import sink_side_class, source_side_class
from chaos.sides.kafka_polls import POLL_SCHEMA
from chaos.sides.visibility import WORKERS_PER_CHECKPOINT
from drivers.connectors import SINKS
from drivers.sdk import records
from drivers.sdk.crashpoints import MARKER_DIR, marker
from drivers.sdk.events import Event


@dataclass
class RunEvidence:
    """What a finished run leaves for its checkers."""

    truth: pa.Table
    """What the source really holds, read back after the run."""
    output: pa.Table
    """The committed main output, read with the format's own reader."""
    late: pa.Table | None
    """The late-event side output, when the pipeline routes late records."""
    outcomes: pa.Table | None
    """The producer's outcome for every record it sent (a live source only)."""
    history: list[dict[str, Any]]
    observations: list[dict[str, Any]] | None = None
    """What the visibility probe saw during the run, when the sink is watched."""
    units: pa.Table | None = None
    """(checkpoint_id, id) of every commit unit, when the sink is watched."""
    unreadable: str | None = None
    """Why the format's own reader could not read the output back, when it could not."""
    polls: pa.Table | None = None
    """Every record the concurrent consumer was handed, when the sink is polled (`POLL_SCHEMA`)."""
    read_errors: int = 0
    drained: bool = False
    drain_seconds: float = 0.0
    fault_errors: tuple[str, ...] = ()

    @cached_property
    def covered(self) -> pa.Table:
        """(unit, id) of the source records each persisted checkpoint covers, one unit per checkpoint:
        a polled output's units (premature-read and lost-write both judge by them)."""
        covered = covering_units(self.truth, _persisted(self.history))
        return covered.set_column(0, "checkpoint_id", pc.multiply(covered["checkpoint_id"], WORKERS_PER_CHECKPOINT))

    @cached_property
    def reads(self) -> tuple[list[dict[str, Any]], pa.Table | None]:
        """What readers saw during the run, as observations, and the units to judge them by: the
        visibility probe's and the output's commit records for a watched sink; for a polled one, the
        concurrent consumer's batches and the units its source's offsets give (`covered`)."""
        if self.polls is None:
            return self.observations or [], self.units
        return poll_observations(self.polls), self.covered


@dataclass(frozen=True)
class Check:
    invariant: str
    applies: Callable[[Experiment], bool]
    run: Callable[[Experiment, Path, RunEvidence, pa.Table], Verdict]
    """Given the experiment, the run directory, the evidence, and every output record (the late
    side output included)."""


def _expected(experiment: Experiment) -> pa.Table:
    return records.expected_table(experiment.workload, experiment.seed)


def _fault_windows(history: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(w.start, w.end) for w in timeline(history).faults]


def _persisted(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in history if event.get("event") == Event.CHECKPOINT_PERSISTED]


def commit_decisions(persisted_events: list[dict[str, Any]], units: pa.Table | None) -> dict[int, float]:
    """When each commit unit's commit was decided: its checkpoint's first `checkpoint.persisted` (a
    worker's unit of checkpoint c is c * WORKERS_PER_CHECKPOINT + worker), or, for a commit the
    harness saw from outside, the time the table format itself records (`decided_at`)."""
    persisted: dict[int, float] = {}
    for event in persisted_events:
        persisted.setdefault(int(event["checkpoint_id"]), float(event.get("decided_at", event["ts"])))
    unit_ids = [] if units is None else pc.unique(units["checkpoint_id"]).to_pylist()
    return {unit: persisted[unit // WORKERS_PER_CHECKPOINT] for unit in unit_ids
            if unit // WORKERS_PER_CHECKPOINT in persisted}


def _premature(evidence: RunEvidence) -> Verdict:
    observations, units = evidence.reads
    decisions = _persisted(evidence.history)
    # A commit seen from outside (a command's group offsets moving) was decided before the harness
    # looked, by how much no one knows: too late a time would make a timely read, or a commit record
    # that landed on time, look premature.
    timed = [e for e in decisions if not e.get("observed") or "decided_at" in e]
    if evidence.polls is not None:
        decisions = timed
    elif units is not None and len(timed) < len(decisions) and "committed_at" in units.column_names:
        units = units.drop_columns(["committed_at"])
    decided = commit_decisions(decisions, units)
    moved_until = clock_moved_until(evidence.history)
    if units is not None and moved_until is not None and "committed_at" in units.column_names:
        # A commit record written while a clock fault held a process carries that clock's time, by
        # how much no one can tell from the record: its units are left out of that comparison.
        untimed = pa.array([unit for unit, at in decided.items() if at <= moved_until], pa.int64())
        index = units.column_names.index("committed_at")
        moved = pc.is_in(units["checkpoint_id"].cast(pa.int64()), value_set=untimed)
        units = units.set_column(index, "committed_at", pc.if_else(
            moved, pa.scalar(None, pa.float64()), units["committed_at"]))
    return check_premature_reads(observations, units, decided)


def clock_moved_until(history: list[dict[str, Any]]) -> float | None:
    """When the run's last clock fault healed (the history's end for one never healed), or None
    without one: a commit decided before then may have its record written under a moved clock."""
    clocks = {event.get("index") for event in history
              if event.get("event") == Event.FAULT_INJECT and event.get("kind") == "clock"}
    ends = [window.end for window in timeline(history).faults if window.index in clocks]
    return max(ends, default=None)


def _polls(evidence: RunEvidence) -> pa.Table:
    return evidence.polls if evidence.polls is not None else POLL_SCHEMA.empty_table()


def _read_by_a_reader(experiment: Experiment) -> bool:
    """A reader polls the sink's output during the run: a watched table or a polled topic."""
    side = sink_side_class(experiment.pipeline.sink)
    return side.watched or side.polled


def _polled(experiment: Experiment) -> bool:
    return sink_side_class(experiment.pipeline.sink).polled


def _readable(evidence: RunEvidence) -> Verdict:
    if evidence.unreadable is None:
        return Verdict("readable-output", "pass", "the output reads back with the format's own reader",
                       {"records": evidence.output.num_rows})
    return Verdict("readable-output", "fail", "the output cannot be read back with the format's own reader, a "
                   f"damaged or corrupt data file: {evidence.unreadable}", {"records": 0})


def _drained(experiment: Experiment, evidence: RunEvidence) -> Verdict:
    if evidence.drained:
        summary = f"the pipeline caught up {evidence.drain_seconds:.1f}s after the workload ended"
    else:
        halted = next((e["halted"] for e in evidence.history
                       if e.get("event") == Event.RUN_DRAIN_TIMEOUT and e.get("halted")), None)
        hangs = hanging_transactions(evidence.history)
        summary = (f"the pipeline stopped for good before it caught up: {halted}" if halted else
                   f"the pipeline is stuck behind a hanging transaction: {describe_hangs(hangs)}" if hangs else
                   f"the pipeline had not caught up {experiment.expect.drain_timeout:.0f}s after the faults healed")
    return Verdict("drained", "pass" if evidence.drained else "fail", summary,
                   {"drain_ms": int(evidence.drain_seconds * 1000)})


def _faults_applied(experiment: Experiment, run_dir: Path, evidence: RunEvidence) -> Verdict:
    """The experiment did what it said: every fault fired and every armed crash point was reached.
    When not, that is no verdict on the connector either way: inconclusive."""
    errors = [*evidence.fault_errors, *(
        f"crash point {point} in {process} never fired (hit {hit} was not reached)"
        for process, points in experiment.crash_points().items() for point, hit in points.items()
        if not marker(run_dir / MARKER_DIR, process, point).exists())]
    if errors:
        return Verdict("faults-applied", "inconclusive", "; ".join(errors), {"errors": len(errors)})
    return Verdict("faults-applied", "pass", "every fault fired and every armed crash point was reached",
                   {"errors": 0})


CHECKS = (
    Check("readable-output", lambda x: True, lambda x, d, ev, every: _readable(ev)),
    Check("no-loss", lambda x: True, lambda x, d, ev, every: check_loss(ev.truth, every, required=x.requires_no_loss)),
    Check("duplicates", lambda x: True,
          lambda x, d, ev, every: check_duplicates(every, forbidden=x.forbids_duplicates)),
    Check("no-phantoms", lambda x: x.expect.no_phantoms,
          lambda x, d, ev, every: check_phantoms(_expected(x), every)),
    Check("source-lost-acked-writes", lambda x: source_side_class(x.pipeline.source).live_feed,
          lambda x, d, ev, every: check_source_acks(ev.outcomes, ev.truth, expected=x.expected_loss)),
    Check("prefix", lambda x: x.pipeline.guarantee == Guarantee.EXACTLY_ONCE
          and source_side_class(x.pipeline.source).partitioned,
          lambda x, d, ev, every: check_prefix(every, ev.truth)),
    Check("per-key-order", lambda x: SINKS[x.pipeline.sink].capabilities.key_order,
          lambda x, d, ev, every: check_key_order(ev.output, required=True)),  # the late output has no order
    Check("late-events", lambda x: x.pipeline.allowed_lateness is not None,
          lambda x, d, ev, every: check_late_events(ev.truth, ev.output, ev.late,
                                                    round(x.pipeline.allowed_lateness * 1000))),
    Check("atomic-visibility", lambda x: sink_side_class(x.pipeline.sink).watched,
          lambda x, d, ev, every: check_atomic_visibility(ev.observations or [], ev.units,
                                                          read_errors=ev.read_errors,
                                                          fault_windows=_fault_windows(ev.history))),
    Check("non-monotonic-read", lambda x: sink_side_class(x.pipeline.sink).watched,
          lambda x, d, ev, every: check_monotonic_reads(ev.observations or [])),
    Check("aborted-read", _read_by_a_reader,
          lambda x, d, ev, every: check_aborted_reads(ev.reads[0], ev.output["id"])),
    Check("premature-read", _read_by_a_reader, lambda x, d, ev, every: _premature(ev)),
    Check("poll-skip", _polled, lambda x, d, ev, every: check_poll_skips(_polls(ev), ev.output)),
    Check("non-monotonic-poll", _polled, lambda x, d, ev, every: check_monotonic_polls(_polls(ev))),
    Check("duplicate-delivery", _polled, lambda x, d, ev, every: check_duplicate_deliveries(_polls(ev))),
    Check("lost-write", lambda x: _polled(x) and source_side_class(x.pipeline.source).partitioned,
          lambda x, d, ev, every: check_lost_writes(ev.covered["id"], _polls(ev), every,
                                                    required=x.requires_no_loss)),
    Check("schema-compatibility", lambda x: x.workload.schema_change_at is not None,
          lambda x, d, ev, every: check_schema(_expected(x), every)),
    Check("liveness", lambda x: True, lambda x, d, ev, every: check_liveness(ev.history, x.expect.recovery_bound)),
    Check("faults-met-traffic", lambda x: True, lambda x, d, ev, every: check_fault_traffic(ev.history)),
    Check("no-orphans", lambda x: True,
          lambda x, d, ev, every: check_orphans([d / "output", d / "late", d / "lake"])),
    Check("drained", lambda x: True, lambda x, d, ev, every: _drained(x, ev)),
    Check("faults-applied", lambda x: True, lambda x, d, ev, every: _faults_applied(x, d, ev)),
)


def planned_invariants(experiment: Experiment) -> list[str]:
    """The invariants a run of `experiment` is held to, in the order of its verdicts."""
    return [check.invariant for check in CHECKS if check.applies(experiment)]


def check_run(experiment: Experiment, run_dir: Path, evidence: RunEvidence) -> list[Verdict]:
    every = evidence.output  # every record, on time or late: what loss, duplicates and phantoms judge
    if evidence.late is not None:
        every = pa.concat_tables([evidence.output, evidence.late], promote_options="permissive")
    return [check.run(experiment, run_dir, evidence, every) for check in CHECKS if check.applies(experiment)]
