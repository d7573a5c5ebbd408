"""An interrupted run's result: status interrupted (exit 130), the faults it healed, and the verdicts
its output allows, none of them a violation (a run cut short looks like loss)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from rich.console import Console

from chaos.checkers.verdict import Verdict
from chaos.checks import RunEvidence
from chaos.experiment import Experiment, load_experiment
from chaos.interrupt import RunInterrupted, Terminated, interrupted_message, repeated, signal_name, terminate
from chaos.report.interrupted import check_interrupted, downgrade, fault_record, record_interrupted
from chaos.report.result import Outcome
from drivers.sdk import records
from drivers.sdk.events import Event
from drivers.sdk.history import History, read_history

EXPERIMENT = """\
name: cut-short
seed: 7
pipeline: {source: kafka, sink: parquet, profile: single-node-durable}
workload: {records: 200, rate: 100}
faults:
  - {at: 1s, kind: partition, target: worker-kafka, duration: 30s}
  - {at: 2s, kind: latency, target: workload-kafka, latency_ms: 50, duration: 30s}
  - {at: 60s, kind: down, target: worker-kafka, duration: 1s}
expect: {no_loss: true}
"""


@pytest.fixture
def experiment(tmp_path: Path) -> Experiment:
    path = tmp_path / "cut-short.yaml"
    path.write_text(EXPERIMENT)
    return load_experiment(path)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run cut short: fault 0 injected and healed, fault 1 injected and never healed, fault 2 never fired."""
    directory = tmp_path / "run"
    (directory / "logs").mkdir(parents=True)
    history = History(directory / "history.jsonl", source="harness")
    history.append(Event.RUN_START, experiment="cut-short", seed=7, run_id=directory.name)
    history.append(Event.FAULT_INJECT, index=0, kind="partition", target="worker-kafka", produced=100)
    history.append(Event.FAULT_INJECT, index=1, kind="latency", target="workload-kafka", produced=150)
    history.append(Event.FAULT_HEAL, index=0, kind="partition", target="worker-kafka")
    history.append(Event.FAULT_ERROR, index=1, error="toxiproxy went away")
    history.append(Event.FAULT_SKIPPED, index=2, kind="down")
    history.close()
    return directory


def half_read(experiment: Experiment, run_dir: Path) -> RunEvidence:
    """What the run left: half the input written out, and the producer's outcomes lost."""
    truth = records.expected_table(experiment.workload, experiment.seed)
    return RunEvidence(truth=truth, output=truth.slice(0, 100), late=None, outcomes=None,
                       history=read_history(run_dir / "history.jsonl"), drained=True, drain_seconds=1.0)


def test_the_history_says_which_faults_were_healed_and_which_not(run_dir):
    healed, unhealed = fault_record(read_history(run_dir / "history.jsonl"))
    assert [(f["index"], f["kind"], f["target"]) for f in healed] == [(0, "partition", "worker-kafka")]
    assert healed[0]["healed_at"] >= healed[0]["injected_at"] >= 0
    assert [(f["index"], f["kind"]) for f in unhealed] == [(1, "latency")] and "healed_at" not in unhealed[0]


def test_a_fail_becomes_inconclusive_and_says_the_run_was_interrupted():
    verdicts = [Verdict("no-loss", "fail", "100 records were lost", {"lost": 100}, [1, 2]),
                Verdict("drained", "fail", "the pipeline had not caught up 60s after the faults healed"),
                Verdict("duplicates", "info", "3 duplicates"), Verdict("liveness", "pass", "recovered")]
    loss, drained, duplicates, liveness = downgrade(verdicts, "SIGTERM")
    assert loss.status == "inconclusive" and "interrupted (SIGTERM)" in loss.summary and "100 records" in loss.summary
    assert loss.counts == {"lost": 100} and loss.examples == [1, 2]
    assert drained.status == "inconclusive" and "caught up" not in drained.summary
    assert (duplicates, liveness) == (verdicts[2], verdicts[3])


def test_an_interrupted_run_is_never_a_violation(experiment, run_dir):
    verdicts = check_interrupted(experiment, run_dir, half_read(experiment, run_dir), "SIGINT")
    by_name = {v.invariant: v for v in verdicts}
    assert not any(v.failed for v in verdicts), verdicts
    assert by_name["no-loss"].status == "inconclusive" and by_name["no-loss"].counts.get("lost") == 100
    assert by_name["drained"].status == "inconclusive"  # drained=True from the reader is not believed
    assert by_name["source-lost-acked-writes"].status == "inconclusive"  # the outcomes died with the interrupt
    applied = by_name["faults-applied"]
    assert applied.status == "inconclusive" and "never fired" in applied.summary and "toxiproxy" in applied.summary


def test_the_result_says_interrupted_with_the_healed_faults_and_the_verdicts(experiment, run_dir):
    raised = record_interrupted(run_dir, Terminated(signal.SIGTERM), experiment,
                                lambda: half_read(experiment, run_dir), Console(quiet=True),
                                restarts={"worker-0": 1})
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "interrupted" and Outcome(result["status"]).exit_code == 130
    assert result["interrupted_by"] == "SIGTERM" and result["schema_version"] == 3
    assert [f["index"] for f in result["healed_faults"]] == [0]
    assert [f["index"] for f in result["unhealed_faults"]] == [1]
    assert result["verdicts"] and result["verdicts_skipped"] is None
    assert {v["status"] for v in result["verdicts"]} <= {"pass", "info", "inconclusive"}
    assert result["restarts"] == {"worker-0": 1} and result["run_id"] == run_dir.name
    assert "Inconclusive" in (run_dir / "junit.xml").read_text()
    assert 'class="badge interrupted"' in (run_dir / "report.html").read_text()
    assert isinstance(raised, RunInterrupted) and isinstance(raised, KeyboardInterrupt)
    assert raised.run_dir == run_dir and raised.unhealed == 1
    message = interrupted_message(raised)
    assert "SIGTERM" in message and str(run_dir) in message and "1 fault(s) could NOT be healed" in message


def test_evidence_that_cannot_be_read_gives_a_result_with_no_verdicts(experiment, run_dir):
    def unreadable() -> RunEvidence:
        raise OSError("kafka is gone")

    record_interrupted(run_dir, KeyboardInterrupt(), experiment, unreadable, Console(quiet=True))
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "interrupted" and result["interrupted_by"] == "SIGINT"
    assert result["verdicts"] == [] and "kafka is gone" in result["verdicts_skipped"]
    assert [f["index"] for f in result["healed_faults"]] == [0]


def test_evidence_that_hangs_is_given_up_on(experiment, run_dir):
    def hanging() -> RunEvidence:
        time.sleep(30)
        raise AssertionError("never returns in time")

    record_interrupted(run_dir, KeyboardInterrupt(), experiment, hanging, Console(quiet=True), timeout=0.2)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["verdicts"] == [] and "took over" in result["verdicts_skipped"]


def test_a_second_interrupt_during_the_cleanup_skips_the_checks(experiment, run_dir):
    try:
        try:
            raise KeyboardInterrupt()
        except KeyboardInterrupt:
            raise KeyboardInterrupt()  # the second Ctrl-C, while the first unwinds
    except KeyboardInterrupt as e:
        second = e
    assert repeated(second) and not repeated(KeyboardInterrupt())

    def never() -> RunEvidence:
        raise AssertionError("the checks must not run after a second interrupt")

    record_interrupted(run_dir, second, experiment, never, Console(quiet=True))
    result = json.loads((run_dir / "result.json").read_text())
    assert result["verdicts"] == [] and "second interrupt" in result["verdicts_skipped"]


def test_a_result_already_written_is_kept(experiment, run_dir):
    (run_dir / "result.json").write_text('{"status": "pass"}')
    raised = record_interrupted(run_dir, KeyboardInterrupt(), experiment, None, Console(quiet=True))
    assert json.loads((run_dir / "result.json").read_text()) == {"status": "pass"}
    assert raised.signal_name == "SIGINT"


def test_sigterm_raises_a_keyboard_interrupt_that_names_it():
    with pytest.raises(KeyboardInterrupt) as caught:
        terminate(signal.SIGTERM, None)
    assert signal_name(caught.value) == "SIGTERM" and signal_name(KeyboardInterrupt()) == "SIGINT"
