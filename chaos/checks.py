"""Holds a finished run to its invariants: which checkers apply, and what each is given.

Every checker is a pure function that returns a `Verdict`; this module only decides which of them
the experiment calls for and feeds them the run's evidence: the source's ground truth, the output
read back independently, the producer's outcomes, what the visibility probe saw, and the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from chaos.checkers.duplicates import check_duplicates
from chaos.checkers.late import check_late_events
from chaos.checkers.liveness import check_liveness
from chaos.checkers.loss import check_loss
from chaos.checkers.order import check_key_order
from chaos.checkers.orphans import check_orphans
from chaos.checkers.phantoms import check_phantoms
from chaos.checkers.schema import check_schema
from chaos.checkers.source_acks import check_source_acks
from chaos.checkers.traffic import check_fault_traffic
from chaos.checkers.verdict import Verdict
from chaos.checkers.visibility import check_atomic_visibility, check_prefix
from chaos.experiment import Experiment
from chaos.matrix import Guarantee
from drivers.connectors import SINKS
from drivers.sdk import records
from drivers.sdk.crashpoints import MARKER_DIR, marker


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
    read_errors: int = 0
    drained: bool = False
    drain_seconds: float = 0.0
    fault_errors: tuple[str, ...] = ()


def check_run(experiment: Experiment, run_dir: Path, evidence: RunEvidence) -> list[Verdict]:
    pipeline, workload = experiment.pipeline, experiment.workload
    truth, output = evidence.truth, evidence.output
    late_verdicts = []
    if evidence.late is not None:
        assert pipeline.allowed_lateness is not None
        late_verdicts.append(check_late_events(truth, output, evidence.late, round(pipeline.allowed_lateness * 1000)))
        output = pa.concat_tables([output, evidence.late], promote_options="permissive")  # every record, either side
    verdicts = [
        check_loss(truth, output, required=experiment.requires_no_loss),
        check_duplicates(output, forbidden=experiment.forbids_duplicates),
    ]
    if experiment.expect.no_phantoms:
        verdicts.append(check_phantoms(records.expected_table(workload, experiment.seed), output))
    if evidence.outcomes is not None:
        verdicts.append(check_source_acks(evidence.outcomes, truth))
    if pipeline.guarantee == Guarantee.EXACTLY_ONCE and "partition" in truth.column_names:
        verdicts.append(check_prefix(output, truth))
    if SINKS[pipeline.sink].capabilities.key_order:
        verdicts.append(check_key_order(evidence.output, required=True))  # the late side output has no order
    verdicts += late_verdicts
    if evidence.observations is not None and evidence.units is not None:
        verdicts.append(check_atomic_visibility(evidence.observations, evidence.units,
                                                read_errors=evidence.read_errors))
    if workload.schema_change_at is not None:
        verdicts.append(check_schema(records.expected_table(workload, experiment.seed), output))
    verdicts.append(check_liveness(evidence.history, experiment.expect.recovery_bound))
    verdicts.append(check_fault_traffic(evidence.history))
    verdicts.append(check_orphans([run_dir / "output", run_dir / "late", run_dir / "lake"]))
    verdicts.append(Verdict(
        "drained", "pass" if evidence.drained else "fail",
        f"the pipeline caught up {evidence.drain_seconds:.1f}s after the workload" if evidence.drained
        else f"the pipeline had not caught up after {experiment.expect.drain_timeout:.0f}s",
        {"drain_ms": int(evidence.drain_seconds * 1000)}))
    fault_errors = [*evidence.fault_errors, *(
        f"crash point {point} in {process} never fired (hit {hit} was not reached)"
        for process, points in experiment.crash_points().items() for point, hit in points.items()
        if not marker(run_dir / MARKER_DIR, process, point).exists())]
    if fault_errors:
        # The experiment did not do what it said: that is no verdict on the connector either way.
        verdicts.append(Verdict("faults-applied", "inconclusive", "; ".join(fault_errors), {"errors": len(fault_errors)}))
    return verdicts
