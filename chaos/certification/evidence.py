"""Proof that a scenario really happened in a run, from what the system under test reported.

A fault that never bit proves nothing: a disk fault on a sink that does not route its writes
through the fault layer would pass every invariant, and so would a link cut while nothing used it.
The schedule's own events (`fault.inject`, `fault.heal`) only say that the testbed acted; each
scenario needs the events in which the pipeline's processes said that the fault reached them: the
source lost and found its broker, a sink write failed on a disk fault or a cut link, a worker (or
a table source) saw the schema change, the coordinator crashed at each point. A case without its evidence fails.
"""

from __future__ import annotations

from typing import Any, Callable

from chaos.certification.scenarios import Scenario
from chaos.matrix import Row
from drivers.connectors import SINKS
from drivers.sdk.events import Event

TWO_PHASE_POINTS = ("coordinator.persist.before", "coordinator.persist.after", "coordinator.commit.mid")
WRITE_FAILURES = ("eio", "enospc")

History = list[dict[str, Any]]


def _events(history: History, kind: Event) -> list[dict[str, Any]]:
    return [e for e in history if e.get("event") == kind]


def _restarted(result: dict[str, Any]) -> bool:
    return sum(result.get("restarts", {}).values()) > 0


def _source_reconnect(row: Row, result: dict[str, Any], history: History) -> list[str]:
    problems = []
    if not _events(history, Event.SOURCE_DISCONNECTED):
        problems.append("the source never reported losing its broker (no source.disconnected)")
    if not _events(history, Event.SOURCE_RECONNECTED):
        problems.append("the source never reported reading again after the loss (no source.reconnected)")
    return problems


def _sink_write_failure(row: Row, result: dict[str, Any], history: History) -> list[str]:
    injected = _events(history, Event.FAULT_INJECT)
    if any(e.get("kind") == "disk" for e in injected):
        hits = [e for e in _events(history, Event.DISK_FAULT_HIT) if e.get("mode") in WRITE_FAILURES]
        if not hits:
            return ["the disk fault never failed a sink write (no disk.fault_hit)"]
        if not _restarted(result):
            return ["the failed write was never rolled back and retried (no worker failed over)"]
        return []
    sink_links = set(SINKS[row.sink].links)
    if not any(e.get("target") in sink_links for e in injected):
        return [f"no fault cut the sink's own link ({', '.join(sorted(sink_links)) or 'none'}), so the source "
                "lost its connection too, or nothing did"]
    if not _events(history, Event.SINK_WRITE_FAILED):
        return ["the sink never reported a failed write (no sink.write_failed)"]
    return []


def _ack_after_commit(row: Row, result: dict[str, Any], history: History) -> list[str]:
    crashed = any(c.get("point") == "source.ack.before" for c in _events(history, Event.CRASH))
    if not crashed or not _restarted(result):
        return ["no worker crashed between the sink's commit and the source's ack"]
    return []


def _two_phase_commit(row: Row, result: dict[str, Any], history: History) -> list[str]:
    fired = {c.get("point") for c in _events(history, Event.CRASH) if c.get("process") == "coordinator"}
    absent = [p for p in TWO_PHASE_POINTS if p not in fired]
    return [f"the coordinator never crashed at {', '.join(absent)}"] if absent else []


def _schema_evolution(row: Row, result: dict[str, Any], history: History) -> list[str]:
    problems = []
    if not _events(history, Event.SCHEMA_CHANGE_SEEN):
        problems.append("nothing in the pipeline saw the schema change (no schema.change_seen from a worker or a "
                        "table source)")
    schema = next((v for v in result.get("verdicts", []) if v.get("invariant") == "schema-compatibility"), None)
    if schema is None or not schema.get("counts", {}).get("after_change"):
        problems.append("no record written after the schema change was in the output to check")
    return problems


def _late_events(row: Row, result: dict[str, Any], history: History) -> list[str]:
    late = next((v for v in result.get("verdicts", []) if v.get("invariant") == "late-events"), None)
    if late is None or not late.get("counts", {}).get("late"):
        return ["no late record was produced and checked"]
    return []


EVIDENCE: dict[str, Callable[[Row, dict[str, Any], History], list[str]]] = {
    "source-reconnect": _source_reconnect,
    "ack-after-commit": _ack_after_commit,
    "sink-write-failure": _sink_write_failure,
    "two-phase-commit": _two_phase_commit,
    "schema-evolution": _schema_evolution,
    "late-events": _late_events,
}
"""What each scenario's run must show, by scenario slug."""


def missing_evidence(scenario: Scenario, row: Row, result: dict[str, Any], history: History) -> list[str]:
    """What the run lacks to count as the scenario; empty when it shows everything."""
    problems = []
    if scenario.slug in ("source-reconnect", "sink-write-failure"):
        kinds = {e.get("event") for e in history}
        if Event.FAULT_INJECT not in kinds or Event.FAULT_HEAL not in kinds:
            problems.append("the fault was never injected and healed")
    return problems + EVIDENCE[scenario.slug](row, result, history)
