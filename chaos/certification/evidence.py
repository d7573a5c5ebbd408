"""Proof that a scenario really happened in a run, beyond its verdicts passing.

A fault that never bit proves nothing: a disk fault on a sink that does not route its writes
through the fault layer would pass every invariant. So each scenario names what the run's history
must show, and a case without that evidence fails.
"""

from __future__ import annotations

from typing import Any

from chaos.certification.scenarios import Scenario
from drivers.sdk.events import Event

TWO_PHASE_POINTS = ("coordinator.persist.before", "coordinator.persist.after", "coordinator.commit.mid")


def missing_evidence(scenario: Scenario, result: dict[str, Any], history: list[dict[str, Any]]) -> list[str]:
    """What the run lacks to count as the scenario; empty when it shows everything."""
    events = [e["event"] for e in history]
    crashes = [e for e in history if e["event"] == Event.CRASH]
    verdicts = {v["invariant"]: v for v in result.get("verdicts", [])}
    restarts = sum(result.get("restarts", {}).values())
    problems = []
    if scenario.slug in ("source-reconnect", "sink-write-failure"):
        if Event.FAULT_INJECT not in events or Event.FAULT_HEAL not in events:
            problems.append("the fault was never injected and healed")
        disk = [e for e in history if e["event"] == Event.FAULT_INJECT and e.get("kind") == "disk"]
        if disk and restarts == 0:
            problems.append("the disk fault never failed a sink write (no worker failed over)")
    elif scenario.slug == "ack-after-commit":
        if not any(c.get("point") == "source.ack.before" for c in crashes) or restarts == 0:
            problems.append("no worker crashed between the sink's commit and the source's ack")
    elif scenario.slug == "two-phase-commit":
        fired = {c.get("point") for c in crashes if c.get("process") == "coordinator"}
        absent = [p for p in TWO_PHASE_POINTS if p not in fired]
        if absent:
            problems.append(f"the coordinator never crashed at {', '.join(absent)}")
    elif scenario.slug == "schema-evolution":
        if "schema-compatibility" not in verdicts:
            problems.append("no schema change was checked")
    elif scenario.slug == "late-events":
        late = verdicts.get("late-events")
        if late is None or not late.get("counts", {}).get("late"):
            problems.append("no late record was produced and checked")
    return problems
