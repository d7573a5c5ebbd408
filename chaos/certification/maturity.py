"""Maturity labels computed from the suite's results, against the labels the connector table declares.

A connector is Certified when every row it is part of ran in this certification, every scenario
that applies to those rows passed, and none of them is left uncovered. A connector the table
labels Certified that falls short of that is an error, not a warning (docs/certification.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.certification.scenarios import SCENARIOS, Status, applicability, certification_rows, slug
from chaos.matrix import Row
from drivers.connectors import SINKS, SOURCES, origin
from drivers.sdk.capabilities import Maturity
from drivers.sdk.connector import Connector


@dataclass(frozen=True)
class Label:
    connector: Connector
    declared: Maturity
    computed: Maturity | None
    """None when this certification did not run every row the connector is part of."""
    why: str

    @property
    def error(self) -> bool:
        """Labelled Certified, but the suite says otherwise."""
        return (self.declared == Maturity.CERTIFIED and self.computed is not None
                and self.computed != Maturity.CERTIFIED)


def compute_labels(ran: list[Row], scenario_status: dict[tuple[str, str], str]) -> list[Label]:
    """`scenario_status` maps (row slug, scenario slug) to pass, fail or error (an environment
    failure), for every applicable pair run."""
    rows = certification_rows()
    labels = []
    for kind in [*SOURCES.values(), *SINKS.values()]:
        # A built-in kind earns its label on our rows; a plug-in's rows (ours as partners) are its own.
        mine = [r for r in rows if (r.source if kind.role == "source" else r.sink) == kind.name
                and (origin(kind).plugin or not r.plugin)]
        if not set(mine) & set(ran) and (mine or origin(kind).plugin or all(r.plugin for r in ran)):
            continue  # only what ran is labelled (and the vector sink, outside the suite, beside our rows)
        labels.append(_label(kind, mine, ran, scenario_status))
    return labels


def _label(kind: Connector, mine: list[Row], ran: list[Row],
           scenario_status: dict[tuple[str, str], str]) -> Label:
    if kind.maturity == Maturity.EXPERIMENTAL or not mine:
        return Label(kind, kind.maturity, Maturity.EXPERIMENTAL, "not in the certification suite")
    if any(r not in ran for r in mine):
        return Label(kind, kind.maturity, None, "not every row with this connector ran")
    shortfalls, undecided = [], []
    for row in mine:
        for scenario in SCENARIOS:
            status = applicability(row, scenario)
            outcome = scenario_status.get((slug(row), scenario.slug))
            if status.status == Status.NOT_COVERED:
                shortfalls.append(f"{slug(row)}: {scenario.slug} not covered ({status.reason})")
            elif status.status == Status.APPLIES and outcome in ("error", "inconclusive"):
                undecided.append(f"{slug(row)}: {scenario.slug}")
            elif status.status == Status.APPLIES and outcome != "pass":
                shortfalls.append(f"{slug(row)}: {scenario.slug} failed")
    if shortfalls:
        return Label(kind, kind.maturity, Maturity.PREVIEW, "; ".join(shortfalls))
    if undecided:  # the testbed failed, not the connector: no verdict, and no label lowered
        return Label(kind, kind.maturity, None, "undecided (an environment error or an inconclusive run): "
                     + "; ".join(undecided))
    return Label(kind, kind.maturity, Maturity.CERTIFIED, f"passed every applicable scenario in {len(mine)} row(s)")
