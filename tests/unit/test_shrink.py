"""The shrinker's reduction, against a fake run that fails by a rule: which faults and workloads
it keeps, how it tells a different failure from the same one, its cache and its budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.errors import SpecError
from chaos.experiment import Experiment
from chaos.explore.explore import drawn, explore_report, parse_seeds
from chaos.explore.shrink import Shrinker, parse_confirm
from chaos.explore.trials import Trial, canonical_digest, schedule_digest
from faults.nemesis import NemesisSpec

NEMESIS = NemesisSpec(kinds=["kill", "pause", "partition", "latency"], targets=["worker-0", "coordinator",
                      "worker-kafka", "worker-coordinator"], start=0.5, until=6, interval=0.5, duration_min=0.3,
                      duration_max=1.0, max_concurrent=2)
BASE = Experiment.model_validate({
    "name": "unit", "seed": 5,
    "pipeline": {"source": "kafka", "sink": "parquet", "workers": 2, "checkpoint_interval": "2s"},
    "workload": {"records": 4000, "rate": 1000, "partitions": 3}})


def a_failing_draw() -> Experiment:
    """A draw of the nemesis with a kill of worker-0 in it, among many other faults."""
    for seed in range(100):
        experiment = drawn(BASE.model_copy(update={"nemesis": NEMESIS}), seed)
        if len(experiment.faults) >= 8 and any(_culprit(f) for f in experiment.faults):
            return experiment
    raise AssertionError("no draw kills worker-0")


def _culprit(fault) -> bool:
    return fault.kind == "kill" and fault.target == "worker-0"


class Bug:
    """Loses records (no-loss fails) when worker-0 is killed for at least 0.2 s while 1000 records
    or more flow; a long cut of the Kafka link fails liveness instead. `flaky`: every third run of
    a failing candidate passes."""

    def __init__(self, flaky: bool = False):
        self.flaky = flaky
        self.runs: list[Experiment] = []

    def __call__(self, experiment: Experiment, label: str) -> Trial:
        self.runs.append(experiment)
        failed: tuple[str, ...] = ()
        if any(f.kind == "partition" and f.target == "worker-kafka" and f.duration > 0.9 for f in experiment.faults):
            failed = ("liveness",)
        elif any(_culprit(f) and f.duration >= 0.2 for f in experiment.faults) and experiment.workload.records >= 1000:
            failed = ("no-loss",)
        if failed and self.flaky and len(self.runs) % 3 == 0:
            failed = ()
        return Trial(label, Path(f"{label}.yaml"), "fail" if failed else "pass", failed, seconds=1.0)


def test_a_failing_schedule_shrinks_to_its_one_culprit_and_a_smaller_workload():
    original = a_failing_draw()
    bug = Bug()
    shrinker = Shrinker(frozenset({"no-loss"}), bug, confirm=(1, 1))
    minimal = shrinker.shrink(original)
    assert [f.kind for f in minimal.faults] == ["terminate"] or [f.kind for f in minimal.faults] == ["kill"]
    (fault,) = minimal.faults
    assert fault.target == "worker-0" and 0.2 <= fault.duration < 0.4
    assert minimal.workload.records == 1000 and minimal.pipeline.workers == 1 and minimal.workload.partitions == 1
    assert minimal.workload.rate < original.workload.rate
    assert minimal.pipeline.checkpoint_interval > original.pipeline.checkpoint_interval
    assert bug(minimal, "again").failed == ("no-loss",)
    # Nothing was run twice but the minimal, confirmed afresh at the end, and every step says what it
    # changed and whether it was taken.
    *searched, confirmation, again = bug.runs
    digests = [canonical_digest(e) for e in searched]
    assert len(digests) == len(set(digests)) == shrinker.runs - 1
    assert canonical_digest(confirmation) == canonical_digest(minimal) == digests[-1] or \
        canonical_digest(confirmation) in digests
    assert shrinker.steps[-1].phase == "confirm" and shrinker.steps[-1].accepted
    assert {s.phase for s in shrinker.steps} == {"remove", "simplify", "workload", "confirm"}
    assert any(s.accepted for s in shrinker.steps) and any(not s.accepted for s in shrinker.steps)


def test_a_candidate_that_fails_differently_is_not_taken():
    original = a_failing_draw()
    long_cut = {"kind": "partition", "after_ready": 0.1, "target": "worker-kafka", "duration": 0.95}
    kill = next(f for f in original.faults if _culprit(f))
    start = Experiment.model_validate({**original.model_dump(mode="json", exclude_none=True),
                                       "faults": [long_cut, kill.model_dump(mode="json", exclude_none=True)]})
    # The run recorded failed liveness (the cut hides the kill): the shrink keeps that class.
    shrinker = Shrinker(frozenset({"liveness"}), Bug(), confirm=(1, 1))
    minimal = shrinker.shrink(start)
    assert [f.kind for f in minimal.faults] == ["partition"]
    dropped_the_cut = [s for s in shrinker.steps if s.change == "remove fault 0"]
    assert dropped_the_cut and not dropped_the_cut[0].accepted
    assert dropped_the_cut[0].trials[0].failed == ("no-loss",)  # recorded, not taken


def test_a_flaky_failure_is_taken_only_when_it_fails_k_of_n_times():
    original = a_failing_draw()
    confirmed = Shrinker(frozenset({"no-loss"}), Bug(flaky=True), confirm=(2, 3))
    minimal = confirmed.shrink(original)
    (fault,) = minimal.faults
    assert _culprit(fault) and minimal.workload.records == 1000
    assert any(len(s.trials) == 3 for s in confirmed.steps)  # a pass among the runs: a third run decided
    # Taking one run's word instead, a flaky pass turns down a reduction that really fails.
    hasty = Shrinker(frozenset({"no-loss"}), Bug(flaky=True), confirm=(1, 1))
    hasty.shrink(original)
    turned_down = {s.digest for s in hasty.steps if not s.accepted and not s.cached}
    assert turned_down & {s.digest for s in confirmed.steps if s.accepted}


class LuckyBug(Bug):
    """The Bug, and one run of luck: the first candidate ever run that shortens the kill below 0.2 s
    fails too (the kill happened to land where it hurts), and never again."""

    def __init__(self) -> None:
        super().__init__()
        self.lucky: str | None = None

    def __call__(self, experiment: Experiment, label: str) -> Trial:
        short = any(_culprit(f) and f.duration < 0.2 for f in experiment.faults)
        if short and experiment.workload.records >= 1000 and self.lucky is None:
            self.lucky = canonical_digest(experiment)
            self.runs.append(experiment)
            return Trial(label, Path(f"{label}.yaml"), "fail", ("no-loss",), seconds=1.0)
        return super().__call__(experiment, label)


def test_a_step_taken_on_luck_is_caught_by_the_confirmation_and_the_search_goes_on_without_it():
    original = a_failing_draw()
    bug = LuckyBug()
    shrinker = Shrinker(frozenset({"no-loss"}), bug, confirm=(1, 1))
    minimal = shrinker.shrink(original)
    lucky = next(s for s in shrinker.steps if s.digest == bug.lucky and not s.cached)
    assert lucky.accepted  # taken on one run's word
    refused = [s for s in shrinker.steps if s.phase == "confirm" and not s.accepted]
    assert [s.digest for s in refused] == [bug.lucky]  # run afresh, it passed: marked as passing
    (fault,) = minimal.faults
    assert _culprit(fault) and 0.2 <= fault.duration < 0.4 and minimal.workload.records == 1000
    assert shrinker.steps[-1].phase == "confirm" and shrinker.steps[-1].accepted
    assert bug(minimal, "again").failed == ("no-loss",)


def test_the_budget_stops_the_shrink_with_the_smallest_failure_so_far():
    original = a_failing_draw()
    ticks = iter(range(10_000))
    shrinker = Shrinker(frozenset({"no-loss"}), Bug(), confirm=(1, 1), budget=6, clock=lambda: next(ticks))
    smallest = shrinker.shrink(original)
    assert shrinker.out_of_budget
    assert 1 <= shrinker.runs <= 6 + 1  # the minimal's confirmation comes after the budget
    assert shrinker.steps[-1].phase == "confirm"
    assert len(smallest.faults) < len(original.faults)
    assert Bug()(smallest, "check").failed == ("no-loss",)


def test_seeds_and_confirm_are_parsed_or_refused():
    assert parse_seeds("3..5") == [3, 4, 5]
    assert parse_confirm("2/3") == (2, 3)
    for bad in ("5..3", "a..b", "7"):
        with pytest.raises(SpecError):
            parse_seeds(bad)
    for bad in ("0/3", "4/3", "2-3", "x/y"):
        with pytest.raises(SpecError):
            parse_confirm(bad)


def test_each_seed_draws_its_own_schedule_and_the_same_seed_the_same_one():
    explorable = BASE.model_copy(update={"nemesis": NEMESIS})
    schedules = {seed: schedule_digest(drawn(explorable, seed).faults) for seed in range(6)}
    assert len(set(schedules.values())) == 6
    assert schedule_digest(drawn(explorable, 3).faults) == schedules[3]
    assert drawn(explorable, 3).nemesis is None  # drawn into plain faults, runnable as they are


def test_explore_lists_failures_first_and_counts_each_invariant_over_repeats():
    trials = [Trial(f"seed-4-run-{i}", Path("x.yaml"), status, failed, details={"seed": 4, "schedule_digest": "d",
                                                                                  "faults": 9})
              for i, (status, failed) in enumerate([("pass", ()), ("fail", ("no-loss",)), ("inconclusive", ()),
                                                    ("fail", ("no-loss", "liveness"))])]
    report = explore_report(Path("e.yaml"), BASE, trials, None, 12.0, repeat=4)
    assert [r["status"] for r in report["runs"]] == ["fail", "fail", "inconclusive", "pass"]
    assert report["failures"] == 2 and report["runs_done"] == 4
    assert report["repeat"] == {"seed": 4, "runs": 4, "failed_invariants": {"liveness": 1, "no-loss": 2},
                                "statuses": {"pass": 1, "fail": 2, "inconclusive": 1}}
