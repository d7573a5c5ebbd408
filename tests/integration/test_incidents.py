"""Experiments written from real public bug reports, and replaying a recorded run."""

from __future__ import annotations

import json

import pytest

from chaos.certification.mutants import MUTANTS
from chaos.certification.plan import with_mutant
from tests.integration.conftest import REPO, chaos_cli

pytestmark = pytest.mark.integration

INCIDENTS = sorted((REPO / "experiments" / "incidents").glob("*.yaml"))
INCIDENT_BUGS = [m for m in MUTANTS if m.experiment.startswith("experiments/incidents/")]


@pytest.mark.parametrize("path", INCIDENTS, ids=lambda p: p.stem)
def test_incident_does_not_recur(run_experiment, path):
    run = run_experiment(path)
    assert run.code == 0, run.stdout + run.stderr
    assert run.verdict("duplicates")["counts"]["extra_copies"] == 0
    assert run.verdict("no-loss")["counts"]["lost"] == 0
    events = [e["event"] for e in run.history()]
    assert "crash" in events, "the incident's failure must really be injected"


@pytest.mark.parametrize("mutant", INCIDENT_BUGS, ids=lambda m: m.name)
def test_incident_fails_with_its_seeded_bug(run_experiment, tmp_path, mutant):
    """The incident experiment is falsifiable: with the bug it reproduces, its invariant fails."""
    run = run_experiment(with_mutant(REPO / mutant.path, mutant.name, tmp_path))
    assert run.code == 1, run.stdout + run.stderr
    assert run.verdict(mutant.caught_by)["status"] == "fail", run.stdout


def test_every_incident_has_its_seeded_bug():
    assert {REPO / m.path for m in INCIDENT_BUGS} == set(INCIDENTS)


def test_replay_reruns_the_same_workload_and_schedule(run_experiment, environment, tmp_path):
    first = run_experiment(REPO / "experiments" / "nemesis.yaml")
    state = f"{environment.state.workdir}/state.json"
    proc = chaos_cli("replay", str(first.run_dir), "--env", state, "--runs-dir", str(tmp_path / "replays"))
    assert proc.returncode == first.code, proc.stdout + proc.stderr
    replayed = next((tmp_path / "replays").glob("*"))
    result = json.loads((replayed / "result.json").read_text())
    assert result["workload_digest"] == first.result["workload_digest"]
    assert result["source_digest"] == first.result["source_digest"]
    assert (replayed / "schedule.txt").read_text() == (first.run_dir / "schedule.txt").read_text()
    assert (replayed / "replay-of.txt").read_text().strip() == str(first.run_dir.resolve())
