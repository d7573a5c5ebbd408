"""Clock faults against real processes and a real Iceberg table: the runtime's wall clocks really
move (pyiceberg dates worker-0's snapshots two minutes early, worker-1's drift ahead), nothing is
lost or duplicated, the history keeps the harness's one clock, and premature-read leaves the units
whose commit records a moved clock dated out of its comparison, and counts them. And the broker's
clock strobing five minutes ahead under an exactly-once Kafka-to-Kafka run: its own log shows the
jumps, and the pipeline keeps exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.table import StaticTable

from drivers.sdk.events import Event
from tests.integration.conftest import REPO, clock_steps

pytestmark = pytest.mark.integration


def snapshot_times(run_dir: Path) -> list[tuple[str, float]]:
    """(worker, timestamp) of every snapshot of the output table, in commit order, by pyiceberg."""
    metadata = max((run_dir / "lake").rglob("output_*/metadata/*.metadata.json"), key=lambda p: p.name)
    table = StaticTable.from_metadata(str(metadata))
    return [(snapshot.summary["chaos.worker"], snapshot.timestamp_ms / 1000) for snapshot in table.snapshots()]


def test_clock_faults_move_the_processes_clocks_and_no_verdict_takes_them_for_anomalies(run_experiment):
    run = run_experiment(REPO / "experiments" / "clock-faults.yaml")
    assert run.code == 0, run.stdout + run.stderr
    history = run.history()
    injects = [e for e in history if e["event"] == Event.FAULT_INJECT]
    assert [(e["target"], e["mode"], e["offset"]) for e in injects] == [
        ("worker-0", "jump", -120.0), ("coordinator", "strobe", 30.0), ("worker-1", "skew", 90.0)]
    times = snapshot_times(run.run_dir)
    start, end = history[0]["ts"], history[-1]["ts"]  # the harness's true clock; the run lasts about 15 s
    # The jump: worker-0 committed while two minutes behind; the skew: worker-1 drifted ahead. (Judged
    # against the true clock, not the first snapshot: that one may itself fall in the jump.)
    assert any(worker == "0" and time < start - 100 for worker, time in times), (start, times)
    assert any(worker == "1" and time > start + 60 for worker, time in times), (start, times)
    # The history stays on one clock: the coordinator's events during its strobe are not 30 s ahead.
    assert all(start - 1 <= e["ts"] <= end + 1 for e in history if e["source"] == "coordinator")
    premature = run.verdict("premature-read")
    assert premature["status"] == "pass" and premature["counts"]["units_without_commit_time"] >= 2, premature
    for invariant in ("no-loss", "duplicates", "atomic-visibility", "aborted-read", "faults-met-traffic"):
        assert run.verdict(invariant)["status"] == "pass", run.verdict(invariant)


def test_the_broker_s_clock_strobes_and_kafka_to_kafka_stays_exactly_once(run_experiment):
    run = run_experiment(REPO / "experiments" / "clock-broker.yaml")
    assert run.code == 0, run.stdout + run.stderr
    steps = clock_steps(run.run_dir / "logs" / "server.log")
    assert any(step > 240 for step in steps) and any(step < -240 for step in steps), steps
    for invariant in ("no-loss", "duplicates", "source-lost-acked-writes", "poll-skip", "lost-write",
                      "premature-read", "faults-met-traffic"):
        assert run.verdict(invariant)["status"] == "pass", run.verdict(invariant)
