"""Each certification case's experiment, derived from its row and its scenario.

One template per scenario (`FAULTS`, `WORKLOAD`), filled in from the row's connectors: how fast
the pipeline checkpoints, how many partitions a topic has, which link a networked sink writes over,
which durability profile the row runs under. A plug-in's row gets its experiments this way, as
ours do; ours are also committed under `experiments/certification/<row>/<scenario>.yaml` for
reading and replaying, and a unit test keeps those files equal to what this module writes.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from chaos.certification.scenarios import Scenario, applicability, reading_link, slug
from chaos.matrix import ROWS, Row
from drivers.connectors import SINKS, SOURCES

SEED_BASE = 1000
"""A case's seed: SEED_BASE + 10 * the row's index in the matrix + the scenario's number."""

WORKLOAD: dict[str, dict[str, Any]] = {
    "source-reconnect": {"records": 6000, "rate": 1000},
    "ack-after-commit": {"records": 6000, "rate": 1000},
    "sink-write-failure": {"records": 6000, "rate": 1000},
    "two-phase-commit": {"records": 12000, "rate": 1000},  # three coordinator incarnations, each with work
    "schema-evolution": {"records": 6000, "rate": 1000, "schema_change_at": 3000},
    "late-events": {"records": 6000, "rate": 1000, "late_every": 25, "lateness": "3s"},
}
REWINDLESS_SCHEMA_EVOLUTION = {"records": 12000, "rate": 1000, "schema_change_at": 9000}
"""Scenario 5's workload for a source that cannot rewind (a live stream): what comes due while its
crashed worker restarts is lost, change and all, so the change comes 9 s in, well after the restart,
and the restarted worker sees both schema versions (as does the output, whatever the crash took)."""
CRASH_AFTER_PREPARE = {"kind": "crash", "point": "sink.prepare.after", "hit": 4, "target": "worker-0"}
FAULTS: dict[str, list[dict[str, Any]]] = {
    "ack-after-commit": [{"kind": "crash", "point": "source.ack.before", "hit": 3, "target": "worker-0"}],
    "sink-write-failure": [{"kind": "disk", "mode": "eio", "target": "worker-0", "after_ready": "1s",
                            "duration": "2s"}],
    "two-phase-commit": [{"kind": "crash", "point": "coordinator.persist.before", "hit": 2},
                         {"kind": "crash", "point": "coordinator.persist.after", "hit": 1},
                         {"kind": "crash", "point": "coordinator.commit.mid", "hit": 1}],
    "schema-evolution": [CRASH_AFTER_PREPARE],
    "late-events": [CRASH_AFTER_PREPARE],
}
"""Each scenario's faults, but for those that cut a link of the row's own (`_faults`): the source's
reading link, and a networked sink's own link instead of its disk."""


def seed(row: Row, scenario: Scenario) -> int:
    return SEED_BASE + 10 * ROWS.index(row) + scenario.number


def _profile(row: Row) -> str:
    """The row's weakest profile, but a durable sink's crash must be recoverable: single-node at least."""
    if row.weakest_profile == "in-memory" and SINKS[row.sink].capabilities.durable:
        return "single-node-durable"
    return row.weakest_profile


def _faults(row: Row, scenario: Scenario) -> list[dict[str, Any]]:
    source, sink = SOURCES[row.source], SINKS[row.sink]
    if scenario.slug == "source-reconnect":
        return [{"kind": "down", "target": reading_link(source), "after_ready": "1s", "duration": "3s"}]
    if scenario.slug == "sink-write-failure" and sink.capabilities.networked:
        own = next(link for link in sink.links if link not in source.links)
        return [{"kind": "down", "target": own, "after_ready": "1s", "duration": "3s"}]
    return [dict(fault) for fault in FAULTS[scenario.slug]]


def experiment(row: Row, scenario: Scenario) -> dict[str, Any]:
    """The case's experiment, as the YAML document it is written as."""
    source = SOURCES[row.source]
    networked = source.capabilities.networked
    pipeline: dict[str, Any] = {"source": row.source, "sink": row.sink, "profile": _profile(row),
                                "checkpoint_interval": "500ms" if networked else "300ms",
                                "workers": 2 if source.capabilities.replayable else 1}
    if scenario.slug == "late-events":
        pipeline["allowed_lateness"] = "1s"
    template = WORKLOAD[scenario.slug]
    if scenario.slug == "schema-evolution" and not source.capabilities.replayable:
        template = REWINDLESS_SCHEMA_EVOLUTION
    workload = {"records": template["records"], "rate": template["rate"], **({"partitions": 4} if networked else {}),
                **{k: v for k, v in template.items() if k not in ("records", "rate")}}
    return {"name": f"cert-{slug(row)}-{scenario.slug}", "seed": seed(row, scenario), "pipeline": pipeline,
            "workload": workload, "faults": _faults(row, scenario), "expect": {"drain_timeout": "90s"}}


def header(row: Row, scenario: Scenario) -> str:
    """The comment the experiment file starts with: what the case checks, and why it applies."""
    why = applicability(row, scenario).reason
    text = (f"Certification, scenario {scenario.number} ({scenario.title}) for the row {row.describe()}: "
            f"{scenario.checks}. Applies because {why}.")
    return textwrap.fill(text, width=98, initial_indent="# ", subsequent_indent="# ") + "\n"


def experiment_yaml(row: Row, scenario: Scenario) -> str:
    return header(row, scenario) + yaml.safe_dump(experiment(row, scenario), sort_keys=False)


def write_committed() -> list[str]:
    """Write our rows' experiment files (those that apply); the paths written. Run after changing a
    template: `python -m chaos.certification.experiments`."""
    from chaos.certification.plan import experiment_path
    from chaos.certification.scenarios import SCENARIOS, Status, certification_rows

    written = []
    for row in certification_rows():
        for scenario in SCENARIOS:
            if applicability(row, scenario).status == Status.APPLIES and not row.plugin:
                path = experiment_path(row, scenario)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(experiment_yaml(row, scenario))
                written.append(str(path))
    return written


if __name__ == "__main__":
    print("\n".join(write_committed()))
