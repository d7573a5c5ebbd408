"""The six certification scenarios, and which of them apply to which matrix row, and why.

Applicability follows from the row's connectors, so the table cannot drift from the connector table:
a scenario either applies, does not apply by the nature of the row (n/a), or applies but is not
covered yet. A row with an uncovered scenario cannot make its connectors Certified.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from chaos.matrix import ANY, ROWS, Row
from drivers.connectors import SINKS, SOURCES
from drivers.sdk.capabilities import Maturity
from drivers.sdk.connector import Connector


@dataclass(frozen=True)
class Scenario:
    number: int
    slug: str
    title: str
    checks: str
    """What passing means, in one sentence."""


SCENARIOS = (
    Scenario(1, "source-reconnect", "Source reconnect after connection loss",
             "the source link goes down mid-stream; the source reconnects and resumes where it was"),
    Scenario(2, "ack-after-commit", "Source offset commit before the batch is acked",
             "a worker crashes between the sink's commit and the source's ack; the source must not "
             "have advanced past what the sink holds"),
    Scenario(3, "sink-write-failure", "Sink write-failure rollback and retry",
             "the sink's writes fail (disk EIO, or its network link cut) mid-stream; nothing partial "
             "becomes visible and the retry neither duplicates nor loses"),
    Scenario(4, "two-phase-commit", "Two-phase commit: coordinator crash at each point",
             "the coordinator crashes after prepare before persist (abort), after persist before "
             "commit (commit on restart), and in the middle of committing several sinks (finish)"),
    Scenario(5, "schema-evolution", "Schema-evolution compatibility",
             "a column is dropped, one widened and one added mid-stream; every record reads under "
             "the final schema with its values preserved"),
    Scenario(6, "late-events", "Late-event handling",
             "every 25th record is 3 s late; each record lands in the main or the late output, never "
             "neither and never the wrong one"),
)
BY_SLUG = {s.slug: s for s in SCENARIOS}


class Status(str, Enum):
    APPLIES = "applies"
    NOT_APPLICABLE = "n/a"
    NOT_COVERED = "not covered"


@dataclass(frozen=True)
class Applicability:
    status: Status
    reason: str



def reading_link(source: Connector) -> str:
    """The link a networked source's workers read over (not the one a producer feeds it by)."""
    return next(link for link in source.links if link.startswith("worker-"))


def slug(row: Row) -> str:
    return f"{row.source}-to-{row.sink}"


def certification_rows() -> list[Row]:
    """The rows the suite runs: every row that can be Certified (the vector sinks are Experimental)."""
    return [r for r in ROWS if r.source != ANY and r.maturity != Maturity.EXPERIMENTAL]


def applicability(row: Row, scenario: Scenario) -> Applicability:
    source_kind, sink_kind = SOURCES[row.source], SINKS[row.sink]
    source, sink = source_kind.capabilities, sink_kind.capabilities
    applies, na, uncovered = Status.APPLIES, Status.NOT_APPLICABLE, Status.NOT_COVERED
    if scenario.number == 1:
        if source.networked:
            return Applicability(applies, f"the source reads over the network, on the {reading_link(source_kind)} link")
        return Applicability(na, "the source reads local files or process memory: there is no connection to lose")
    if scenario.number == 2:
        return Applicability(applies, "every source acknowledges its position only after the sink committed")
    if scenario.number == 3:
        if not sink.durable:
            return Applicability(na, "the sink writes to process memory: no disk or network is under the write")
        if sink.networked:
            own = [link for link in sink_kind.links if link not in source_kind.links]
            return Applicability(applies, f"the sink writes over the network: its own link ({', '.join(own)}) is "
                                          "cut during the writes, and the source's stays up")
        if not sink.disk_faults_per_file:
            return Applicability(uncovered, f"the {sink_kind.title} sink's files are written by a library out of "
                                            "reach of the disk-fault hook (a native writer), so a fault cannot "
                                            "land between two files of one commit; it needs a filesystem-level "
                                            "fault layer (FUSE or LD_PRELOAD)")
        return Applicability(applies, "the sink's file writes fail with EIO, each file on its own")
    if scenario.number == 4:
        if sink.two_phase:
            return Applicability(applies, "the sink pre-commits and the coordinator resolves the commit")
        return Applicability(na, "the sink is not two-phase: a checkpoint is visible at prepare, "
                                 "so there is no pending commit for a coordinator to resolve")
    if scenario.number == 5:
        lacking = [k for k in (source_kind, sink_kind) if not k.capabilities.takes_every_schema_change]
        if not lacking:
            return Applicability(applies, "the workload drops, widens and adds a column mid-stream")
        kind = lacking[0]
        takes = ", ".join(sorted(kind.capabilities.schema_changes)) or "none"
        return Applicability(uncovered, f"the {kind.title} {kind.role} does not take every column change yet "
                                        f"(it takes: {takes}); the workload drops, widens and adds a column")
    if scenario.number == 6:
        if not source.event_time:
            return Applicability(na, "the source carries no event time, so no record can be late")
        if source.late_routing:
            return Applicability(applies, "records behind their partition's watermark go to the late output")
        return Applicability(uncovered, f"the {source_kind.title} source has no per-split watermarks for late "
                                        "routing yet")
    raise ValueError(f"no scenario {scenario.number}")
