"""The first runs of a new user, each of which once gave a wrong verdict or a misleading figure:
now each gets the right outcome. (Without services: the experiment, a recorded history, the CLI.)"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaos.checkers.traffic import check_fault_traffic
from chaos.checkers.verdict import Verdict
from chaos.env.acquire import discard_data
from chaos.errors import SpecError
from chaos.experiment.loader import parse_experiment
from chaos.report.junit import build_junit
from chaos.report.result import Outcome, overall_status

REPO = Path(__file__).resolve().parents[2]

ICEBERG = """name: first-run
seed: 1
pipeline: {source: kafka-transactional, sink: iceberg-2pc, profile: distributed-durable}
workload: {records: 1000, rate: 100}
faults:
  - kind: crash
    point: sink.commit.mid
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_experiment(text, "exp.yaml")
    return info.value.problems


# 1. A mistake in the experiment is refused, and a fault that never fires is no violation.
def test_a_crash_point_the_sink_never_passes_is_refused_naming_the_points_it_does():
    (problem,) = problems(ICEBERG)
    assert problem.startswith("line 7: faults[0].point: crash point sink.commit.mid is never passed by the "
                              "iceberg-2pc sink")
    assert "sink.commit.before, sink.commit.after" in problem


def test_a_fault_that_never_fired_is_inconclusive_and_an_error_in_junit_not_a_failure(tmp_path):
    verdicts = [Verdict("no-loss", "pass", "all there"),
                Verdict("faults-applied", "inconclusive", "crash point sink.commit.after in worker-1 never fired")]
    assert overall_status(verdicts) == Outcome.INCONCLUSIVE and Outcome.INCONCLUSIVE.exit_code == 4
    result = {"experiment": "x", "status": "inconclusive", "verdicts": [v.__dict__ for v in verdicts]}
    root = build_junit(tmp_path, result).getroot()
    assert root.findall(".//failure") == [] and "InvariantViolation" not in ET.tostring(root, "unicode")
    assert [e.get("type") for e in root.findall(".//error")] == ["Inconclusive"]


# 2. Faults that met no pipeline traffic make the run inconclusive, naming them.
def _history(*events: tuple[float, str, dict]) -> list[dict]:
    return [{"ts": t, "source": "harness", "event": e, **f} for t, e, f in events]


def test_a_partition_over_before_the_workers_joined_is_inconclusive():
    history = _history((0.0, "run.start", {}), (0.1, "workload.start", {}),
                       (2.0, "fault.inject", {"index": 0, "kind": "partition", "target": "worker-kafka"}),
                       (5.0, "fault.heal", {"index": 0}), (5.5, "pipeline.ready", {}),
                       (6.0, "checkpoint.persisted", {"checkpoint_id": 1, "positions": {"0": {"0": 500}}}),
                       (6.1, "checkpoint.committed", {"checkpoint_id": 1}), (9.0, "workload.end", {}))
    verdict = check_fault_traffic(history)
    assert verdict.status == "inconclusive"
    assert "faults[0] (partition worker-kafka): it was over before the pipeline was ready" in verdict.summary


def test_a_kill_after_the_input_was_fully_committed_is_inconclusive():
    commit = [(1.0 + i, e, {"checkpoint_id": i, "positions": {"0": {"0": 100 * i}}} if e.endswith("persisted")
               else {"checkpoint_id": i}) for i in range(1, 9) for e in ("checkpoint.persisted", "checkpoint.committed")]
    history = _history((0.0, "run.start", {}), (0.5, "pipeline.ready", {}), *commit,
                       (10.0, "fault.inject", {"index": 0, "kind": "kill", "target": "worker-0"}),
                       (11.0, "fault.heal", {"index": 0}), (12.0, "run.drained", {}))
    verdict = check_fault_traffic(history)
    assert verdict.status == "inconclusive" and "nothing left to process" in verdict.summary


# 3. Figures: schedule.txt has a test in test_nemesis (every trigger); the drain and the commits here.
def test_the_drain_counts_from_the_workload_s_end_to_the_covering_commit():
    from chaos.checkers.progress import drain_seconds

    # the faults healed at 9 s and the harness only looked at 12 s: neither is the drain
    history = _history((0.0, "run.start", {}), (5.0, "workload.end", {}),
                       (7.5, "checkpoint.committed", {"checkpoint_id": 8}), (9.0, "fault.heal", {"index": 0}))
    assert drain_seconds(history, 8) == 2.5
    assert drain_seconds(history, 3) is None
    early = _history((5.0, "checkpoint.committed", {"checkpoint_id": 2}), (6.0, "workload.end", {}))
    assert drain_seconds(early, 2) == 0.0


def test_atomic_visibility_counts_the_commits_it_judged():
    from chaos.checkers.visibility import check_atomic_visibility

    verdict = check_atomic_visibility([{"ts": 1.0, "ids": [1, 2]}, {"ts": 2.0, "ids": [1, 2, 3]}],
                                      {10: [1, 2], 11: [3], 21: [4]})
    assert "of the 3 commits in the output" in verdict.summary and verdict.counts["commits"] == 3


# 4. Validation lists every problem at once, each at its line, in words.
def test_field_and_cross_field_problems_come_together_each_with_its_line():
    text = ICEBERG.replace("name: first-run", "name: First_Run").replace("rate: 100}", "rate: 100, recrods: 4}")
    found = problems(text)
    assert [p.split(":")[0] for p in found] == ["line 1", "line 4", "line 7"]
    assert "lower-case letters" in found[0] and "(did you mean 'first_run'?)" in found[0]
    assert "did you mean 'records'" in found[1] and "never passed" in found[2]


def test_a_key_of_another_fault_kind_says_which_kinds_have_it():
    text = ICEBERG.replace("  - kind: crash\n    point: sink.commit.mid\n",
                           "  - kind: kill\n    point: sink.commit.mid\n    target: worker-0\n    at: 1s\n"
                           "    duration: 1s\n")
    (problem,) = problems(text)
    assert "a `kill` fault has no `point` (only `crash` faults do)" in problem and "did you mean" not in problem


def test_the_nemesis_says_why_it_does_not_draw_disk_faults():
    text = ICEBERG.split("faults:")[0] + "nemesis: {until: 30s, kinds: [disk]}\n"
    (problem,) = problems(text)
    assert "the nemesis does not draw 'disk' faults" in problem and "unknown fault kind" not in problem


# 8. Comforts: several files at once, a preview of what will run, and no environment left behind.
def _chaos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1"})


def test_validate_show_prints_the_guarantee_the_schedule_and_the_invariants():
    done = _chaos("validate", "--show", "experiments/quickstart.yaml")
    assert done.returncode == 0, done.stderr
    assert "guarantee:  at least once (no loss required, duplicates allowed)" in done.stdout
    assert "invariants: readable-output, no-loss, duplicates, no-phantoms, source-lost-acked-writes" in done.stdout
    assert "4.000s  9.000s  partition  worker-kafka" in done.stdout


def test_run_refuses_a_batch_with_an_invalid_file_before_running_any(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nseed: 1\n")
    done = _chaos("run", "experiments/quickstart.yaml", str(bad), "--runs-dir", str(tmp_path / "runs"))
    assert done.returncode == 2 and "bad.yaml" in done.stderr and "workload" in done.stderr
    assert not (tmp_path / "runs").exists(), "nothing ran"


def test_a_private_environment_s_data_goes_and_its_logs_stay(tmp_path):
    for name in ("kafka-data/topic-0/00.log", "pg-data/base/1", "logs/server.log", "state.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    discard_data(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["logs", "logs/server.log"]
