"""The black-box certification's plan: every applicable scenario's experiment is valid for the
connector's engine, the n/a one says why, and the label follows the verdicts (Certified only
when every applicable scenario passed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rich.console import Console

from chaos.certification.black_box import (
    black_box_experiment,
    black_box_report,
    black_box_scenarios,
    certify_black_box,
    missing_black_box_evidence,
    seeds,
)
from chaos.certification.scenarios import Status
from chaos.certification.suite import Outcome
from chaos.errors import EXIT_OK, SpecError
from chaos.experiment.loader import parse_experiment
from drivers.engines import ENGINE_CONNECTORS
from drivers.sdk.events import Event

SINK = ENGINE_CONNECTORS["iceberg-sink"]


@pytest.mark.parametrize("quick", [False, True])
def test_every_applicable_scenario_is_a_valid_experiment_on_the_engine(quick):
    """Each run of it (one seed with --quick, three without) is valid on the engine."""
    cases = black_box_scenarios(SINK)
    assert [c.scenario.number for c in cases] == [1, 2, 3, 4, 5, 6]
    for case in cases:
        if case.status != Status.APPLIES:
            assert case.reason and not case.faults
            continue
        assert len(seeds(case, quick)) == (1 if quick else 3)
        for seed in seeds(case, quick):
            document = black_box_experiment(SINK, case, seed)
            experiment = parse_experiment(yaml.safe_dump(document), f"{case.scenario.slug}.yaml")
            assert experiment.pipeline.engine == "kafka-connect" and experiment.pipeline.connector == "iceberg-sink"
            assert experiment.crash_points() == {} and experiment.seed == seed


def _outcome(status: str) -> Outcome:
    return Outcome("case", status, None, ["no-loss"] if status == "fail" else [])


@pytest.mark.parametrize(("statuses", "report_status", "label"), [
    (["pass"] * 5, "pass", "Certified"),
    (["pass", "fail", "pass", "pass", "pass"], "fail", "Preview"),
    (["pass", "error", "pass", "pass", "pass"], "error", None),
])
def test_the_label_follows_the_applicable_scenarios(statuses, report_status, label):
    cases = black_box_scenarios(SINK)
    applicable = [c for c in cases if c.status == Status.APPLIES]
    outcomes = {c.scenario.slug: _outcome(s) for c, s in zip(applicable, statuses)}
    report = black_box_report(SINK, cases, outcomes, True, Path("/tmp"))
    assert report["status"] == report_status and report["connector"]["computed"] == label
    assert report["connector"]["version"] == SINK.version
    late = next(s for s in report["scenarios"] if s["scenario"] == "late-events")
    assert late["status"] == "n/a" and "event time" in late["why"]


def test_a_kill_without_a_restart_or_later_commit_proves_nothing():
    case = next(c for c in black_box_scenarios(SINK) if c.scenario.slug == "ack-after-commit")
    history = [{"event": Event.FAULT_INJECT, "ts": 1.0}, {"event": Event.FAULT_HEAL, "ts": 2.0},
               {"event": Event.ENGINE_COMMIT_SEEN, "ts": 1.5}]
    problems = missing_black_box_evidence(case, {"restarts": {"connect-1": 0}}, history)
    assert problems == ["no killed worker was restarted", "no commit landed after the faults healed"]
    history.append({"event": Event.ENGINE_COMMIT_SEEN, "ts": 3.0})
    assert missing_black_box_evidence(case, {"restarts": {"connect-1": 1}}, history) == []


def test_the_plan_shows_each_scenario_with_its_faults_without_running_anything(tmp_path):
    console = Console(record=True, width=200)
    code = certify_black_box("kafka-connect", ["iceberg-sink"], True, tmp_path, None, True, console, only_plan=True)
    text = console.export_text()
    assert code == EXIT_OK and not list(tmp_path.iterdir())
    assert "target worker-kafka" in text and "target connect-coordinator" in text
    assert "late-events" in text and "n/a" in text and "schema_change_at 4500" in text


def test_only_an_engine_with_connectors_of_its_own_can_be_certified(tmp_path):
    with pytest.raises(SpecError) as info:
        certify_black_box("command", ["anything"], True, tmp_path, None, True, Console(), only_plan=True)
    assert "unknown engine 'command'" in str(info.value) and "kafka-connect" in str(info.value)
