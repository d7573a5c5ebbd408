"""`engine: command` against real Kafka and Toxiproxy: a user's own pipeline (a small Kafka ->
Parquet copier, `examples/command-pipeline/copier.py`) is started from its argv, killed, cut off
and restarted like our workers, and judged by the same checkers; its buggy variant is caught."""

from __future__ import annotations

from chaos.errors import EXIT_OK, EXIT_VIOLATION
from drivers.sdk.events import Event
from tests.integration.conftest import REPO

EXPERIMENTS = REPO / "experiments" / "engines"


def test_a_pipeline_of_your_own_survives_a_kill_and_a_cut_link(run_experiment):
    run = run_experiment(EXPERIMENTS / "command-copier.yaml")
    assert run.code == EXIT_OK, run.stdout + run.stderr
    history = run.history()
    ready = [e for e in history if e["event"] == Event.ENGINE_WORKER_READY]
    assert {e["source"] for e in ready} == {"command-0", "command-1"}
    # The killed copier was restarted, and said it was ready again by its own `ready` line.
    assert sum(e["source"] == "command-0" for e in ready) == 2, ready
    assert run.result["restarts"]["command-0"] == 1
    assert any(e["event"] == Event.CHECKPOINT_COMMITTED for e in history)
    assert run.verdict("no-loss")["status"] == "pass"
    assert run.verdict("faults-met-traffic")["status"] == "pass"


def test_a_pipeline_that_commits_offsets_for_unwritten_rows_is_caught(run_experiment):
    run = run_experiment(EXPERIMENTS / "command-copier-buffered.yaml")
    assert run.code == EXIT_VIOLATION, run.stdout + run.stderr
    assert run.verdict("no-loss")["status"] == "fail" and run.verdict("no-loss")["counts"]["lost"] > 0
    assert run.verdict("drained")["status"] == "pass"  # its offsets cover the input: the rows are just not there
