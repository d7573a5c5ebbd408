"""The schedule run is the schedule written (issue #15): every way a schedule could be silently
changed, or hold a trigger that can never fire, is refused at the later fault's trigger, naming the
other fault; schedules that run as written, and every drawn nemesis, pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from chaos.errors import SpecError
from chaos.experiment.consistency import inconsistencies
from chaos.experiment.loader import expand_nemesis, load_experiment, parse_experiment
from chaos.experiment.models import Experiment
from chaos.experiment.topology import available_targets
from faults.nemesis import SCHEDULABLE_KINDS, NemesisSpec, generate

REPO = Path(__file__).resolve().parents[2]
NEMESIS_EXPERIMENTS = sorted(p for p in (REPO / "experiments").rglob("*.yaml") if "nemesis:" in p.read_text())
SEEDS = range(201)

HEAD = """\
name: unit
seed: 7
pipeline:
  source: kafka
  sink: parquet
  profile: distributed-durable
  workers: 2
workload:
  records: 1000
  rate: 100
expect:
  drain_timeout: 10s
faults:
"""
FIRST_FAULT_LINE = HEAD.count("\n") + 1
CRASH = {"kind": "crash", "point": "sink.prepare.after"}


def spec(*faults: dict[str, Any]) -> str:
    """The experiment with these faults, one per line, so that faults[i] is on FIRST_FAULT_LINE + i."""
    return HEAD + "".join(f"  - {yaml.safe_dump(f, default_flow_style=True, width=1000)}" for f in faults)


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_experiment(text, "exp.yaml")
    return info.value.problems


def kill(target: str = "worker-0", **trigger: Any) -> dict[str, Any]:
    return {"kind": "kill", "target": target, "duration": "3s", **trigger}


def down(target: str = "worker-kafka", **trigger: Any) -> dict[str, Any]:
    return {"kind": "down", "target": target, "duration": "3s", **trigger}


def disk(target: str = "worker-0", **trigger: Any) -> dict[str, Any]:
    return {"kind": "disk", "mode": "eio", "target": target, "duration": "3s", **trigger}


# --- two faults that hold one thing at once --------------------------------------------------------

PROCESS = "a process takes one kill, terminate or pause at a time"
LINK = "a link's proxy is either up or down"
DISK = "every disk fault goes through the run's one control file"

COLLISIONS = {
    # a second kill of a process already down: the first heal restarts it under the second
    "kill-kill": ([kill(at="5s"), kill(at="6s")], 1, "at", 0, "kill worker-0 at 5s for 3s", PROCESS),
    # a pause of a killed process: SIGSTOP to nothing, and the kill's heal restarts it mid-pause
    "kill-pause": ([kill(after_ready="1s"), {**kill(after_ready="2s"), "kind": "pause"}], 1, "after_ready", 0,
                   "kill worker-0 after_ready 1s for 3s", PROCESS),
    # a pause inside a terminate: the shorter one heals first and releases the longer one
    "pause-inside-terminate": ([{**kill(at="5s"), "kind": "terminate", "duration": "10s"},
                                {**kill(at="6s"), "kind": "pause", "duration": "1s"}], 1, "at", 0,
                               "terminate worker-0 at 5s for 10s", PROCESS),
    # starting the moment the other heals: the due fault is fired before the expired one heals
    "touching-kills": ([kill(at="5s"), kill(at="8s")], 1, "at", 0, "kill worker-0 at 5s for 3s", PROCESS),
    # a service: a second stop of a stopped broker, and a restart while the other still holds it
    "kafka-kill-pause": ([kill("kafka", at="5s"), {**kill("kafka", at="7s"), "kind": "pause"}], 1, "at", 0,
                         "kill kafka at 5s for 3s", PROCESS),
    # the later fault listed first: the problem is still at the later one, naming the earlier
    "listed-out-of-order": ([kill(at="7s"), kill(at="5s")], 0, "at", 1, "kill worker-0 at 5s for 3s", PROCESS),
    # a down of a link already down: the first heal re-enables the proxy under the second
    "down-down": ([down(at="5s"), down(at="7s")], 1, "at", 0, "down worker-kafka at 5s for 3s", LINK),
    "touching-downs": ([down(after_ready="1s"), down(after_ready="4s")], 1, "after_ready", 0,
                       "down worker-kafka after_ready 1s for 3s", LINK),
    # two disk faults on different workers share the one control file: the second replaces the first
    "disk-disk": ([disk(at="5s"), disk("*", at="6s")], 1, "at", 0, "disk worker-0 at 5s for 3s", DISK),
    # equal event triggers fire in the same tick
    "same-record-count": ([kill(at_records=500), kill(at_records=500)], 1, "at_records", 0,
                          "kill worker-0 at record 500 for 3s", PROCESS),
    "same-commit-count": ([down(at_commits=4), down(at_commits=4)], 1, "at_commits", 0,
                          "down worker-kafka at commit 4 for 3s", LINK),
    "same-crash": ([CRASH, kill(after_crash="sink.prepare.after"), kill(after_crash="sink.prepare.after")], 2,
                   "after_crash", 1, "kill worker-0 after crash sink.prepare.after for 3s", PROCESS),
}


@pytest.mark.parametrize("case", list(COLLISIONS))
def test_two_faults_holding_one_thing_at_once_are_refused(case: str) -> None:
    faults, later, field, other, described, reason = COLLISIONS[case]
    (problem,) = problems_of(spec(*faults))
    assert problem.startswith(f"line {FIRST_FAULT_LINE + later}: faults[{later}].{field}: starts no later than "
                              f"faults[{other}] ({described}) heals; {reason}"), problem


def test_a_fault_meeting_two_others_names_each() -> None:
    problems = problems_of(spec(kill(at="5s", duration="10s"), kill("worker-1", at="5s"), kill(at="6s")))
    assert len(problems) == 1 and "faults[0] (kill worker-0 at 5s for 10s)" in problems[0]
    problems = problems_of(spec(kill(at="5s"), kill(at="6s"), kill(at="7s")))
    assert [p.split(": starts")[0].split(": ", 1)[1] for p in problems] == ["faults[1].at", "faults[2].at",
                                                                          "faults[2].at"]
    assert "faults[0] (kill" in problems[1] and "faults[1] (kill" in problems[2]


def test_the_model_refuses_a_collision_too() -> None:
    data = yaml.safe_load(spec(down(at="5s"), down(at="6s")))
    with pytest.raises(ValidationError, match=r"faults\[1\]\.at: starts no later than faults\[0\]"):
        Experiment.model_validate(data)


ACCEPTED = {
    # one target, one after the other (a heal, then the next fault a moment later)
    "kills-in-turn": [kill(at="5s"), kill(at="8.001s")],
    "downs-in-turn": [down(after_ready="1s"), down(after_ready="4.5s")],
    "disk-in-turn": [disk(at="1s"), disk("*", at="4.001s")],
    # overlapping, on different targets
    "kills-of-two-workers": [kill(at="5s"), kill("worker-1", at="5s")],
    "kill-worker-and-broker": [kill(at="5s"), kill("kafka", at="5s")],
    "downs-of-two-links": [down(at="5s"), down("worker-coordinator", at="5s")],
    # toxics stack: each is a toxic of its own name, and each heal removes only its own
    "two-latencies": [{"kind": "latency", "latency_ms": 50, "target": "worker-kafka", "at": "5s", "duration": "3s"},
                      {"kind": "latency", "latency_ms": 80, "target": "worker-kafka", "at": "6s", "duration": "3s"}],
    "partition-in-down": [down(at="5s"), {"kind": "partition", "target": "worker-kafka", "at": "6s", "duration": "1s"}],
    # different mechanisms on one worker: its process and the disk control file
    "kill-and-disk": [kill(at="5s"), disk(at="5s")],
    "crash-and-kill": [{**CRASH, "target": "worker-0"}, kill(at="5s")],
    # different clocks cannot be compared from the file
    "at-and-after-ready": [kill(at="5s"), kill(after_ready="5s")],
    "different-record-counts": [kill(at_records=100), kill(at_records=101)],
    "record-and-commit": [kill(at_records=100), kill(at_commits=3)],
    # a commit count cannot be bounded: commits go on for as long as the run does
    "far-commit-count": [kill(at_commits=100_000)],
    # the runner waits for the last heal (plus 30 s) before the drain timeout starts: a fault that starts
    # while the run goes on (10 s of workload, 10 s of drain) may heal long after
    "heals-after-workload-and-drain": [kill(at="19.9s", duration="100s")],
    "after-armed-crash": [{**CRASH, "target": "worker-1"}, kill(after_crash="sink.prepare.after")],
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_schedules_that_run_as_written_pass(case: str) -> None:
    experiment = parse_experiment(spec(*ACCEPTED[case]), "exp.yaml")
    assert len(experiment.faults) == len(ACCEPTED[case])


# --- a trigger that can never fire ---------------------------------------------------------------

@pytest.mark.parametrize("trigger", ["at", "after_ready"])
def test_a_fault_that_starts_after_the_run_is_over_is_refused(trigger: str) -> None:
    (problem,) = problems_of(spec(kill(**{trigger: "20s"})))
    assert problem == (f"line {FIRST_FAULT_LINE}: faults[0].{trigger}: 20s is after the run is over: the workload "
                       "produces its 1000 records in 10s at 100/s, and the pipeline must catch up within "
                       "drain_timeout (10s) of that, so the fault would meet no pipeline; fire it earlier, or raise "
                       "expect.drain_timeout")
    prefilled = spec(kill(**{trigger: "20s"})).replace("  rate: 100\n", "  rate: 100\n  prefill: true\n")
    assert len(parse_experiment(prefilled, "exp.yaml").faults) == 1  # how fast a prefilled input is read is the run's



def test_an_after_crash_on_a_point_no_crash_fault_arms_is_refused() -> None:
    (problem,) = problems_of(spec({**CRASH, "point": "sink.prepare.before"}, kill(after_crash="sink.prepare.after")))
    assert problem == (f"line {FIRST_FAULT_LINE + 1}: faults[1].after_crash: sink.prepare.after never fires: no "
                       "`crash` fault arms it (armed: sink.prepare.before), and only an armed crash point fires")


def test_an_after_crash_with_no_crash_at_all_says_none_is_armed() -> None:
    (problem,) = problems_of(spec(kill(after_crash="coordinator.commit.after")))
    assert problem.endswith("no `crash` fault arms it (armed: none), and only an armed crash point fires")


# --- a drawn nemesis never breaks these rules ------------------------------------------------------

def test_the_committed_experiments_with_a_nemesis_are_found() -> None:
    assert len(NEMESIS_EXPERIMENTS) >= 2


@pytest.mark.parametrize("path", NEMESIS_EXPERIMENTS, ids=lambda p: p.name)
def test_no_drawn_schedule_of_a_committed_nemesis_is_refused(path: Path) -> None:
    """Each draw, replayed from its resolved faults, validates as a hand-written schedule would."""
    experiment = load_experiment(path, draw_nemesis=False)
    assert experiment.nemesis is not None
    for seed in SEEDS:
        nemesis = experiment.nemesis.model_copy(update={"seed": seed})
        drawn = expand_nemesis(experiment.model_copy(update={"nemesis": nemesis}))
        assert inconsistencies(drawn.pipeline, drawn.workload, enumerate(drawn.faults)) == [], seed
        Experiment.model_validate(drawn.model_dump(mode="json"))  # as `chaos replay` reads it


@pytest.mark.parametrize("max_concurrent", [1, 4])
def test_no_draw_of_every_kind_on_every_target_is_refused(max_concurrent: int) -> None:
    """The densest nemesis: every kind, short gaps, on every link and process of a distributed row."""
    experiment = parse_experiment(HEAD.replace("faults:\n", ""), "exp.yaml")
    spec_ = NemesisSpec(kinds=list(SCHEDULABLE_KINDS), until=30, interval=0.05, duration_min=0.001,
                        duration_max=2, max_concurrent=max_concurrent)
    for seed in SEEDS:
        faults = generate(spec_, seed, *available_targets(experiment.pipeline))
        assert inconsistencies(experiment.pipeline, experiment.workload, enumerate(faults)) == [], seed
