"""Reduce a failing run to a minimal reproducer: fewer faults, simpler faults, a smaller workload.

The reduction keeps the failure's class: a candidate counts as failing only if the same set of
invariants fails (its *signature*); one that fails differently is recorded and not taken. It is
greedy, in three phases, in the spirit of delta debugging (DEMi, NSDI 2016):
1. remove faults in chunks, halves first, then quarters, down to single faults (ddmin);
2. make each remaining fault simpler: a simpler kind, shorter, earlier, weaker (`faults.reduce`);
3. shrink the workload and the topology: fewer records, a lower rate, fewer workers and
   partitions, a longer checkpoint interval.

A later phase can make an earlier one useful again (a fault moved earlier may make another one
unnecessary), so the three phases are repeated until a whole pass takes nothing.

A bug that needs a timing window fails only sometimes, so a candidate is accepted only when it
fails K of N times; every candidate's outcome is cached under its canonical digest, so no step is
run twice. At the budget it stops cleanly, keeping the smallest failing experiment found so far.

A step can still be taken on luck (a 0.1 s reset that happened to meet a heartbeat), and every later
step then stands on an experiment that rarely fails. So the end of the search is confirmed: the
minimal is run afresh and must fail K of N times again. One that does not is marked as not failing,
and the search goes on from the step before it (within the budget; after it, it only steps back).
The minimal handed to the user has failed more than once, never on one run's word alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from chaos.errors import EXIT_OK, SpecError
from chaos.experiment import Experiment, dump_experiment
from chaos.explore.pages import write_page
from chaos.explore.trials import Trial, canonical_digest, open_trials
from chaos.runner import recorded_experiment
from faults.catalog import Fault
from faults.nemesis import SETTLE, describe
from faults.reduce import chunk_removals, overlapping, simplifications

MIN_RECORDS = 200
MIN_RATE = 50.0
MAX_CHECKPOINT_INTERVAL = 10.0

RunCandidate = Callable[[Experiment, str], Trial]
"""Runs a candidate experiment once, under a label, and says how it went."""


class OutOfBudget(Exception):
    """The budget is spent: the shrink stops with what it has."""


@dataclass
class Step:
    phase: str
    change: str
    digest: str
    accepted: bool
    trials: list[Trial] = field(default_factory=list)
    cached: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "change": self.change, "digest": self.digest, "accepted": self.accepted,
                "cached": self.cached, "runs": [t.as_json() for t in self.trials],
                "seconds": round(sum(t.seconds for t in self.trials), 1)}


class Shrinker:
    def __init__(self, signature: frozenset[str], run: RunCandidate, confirm: tuple[int, int] = (2, 3),
                 budget: float | None = None, clock: Callable[[], float] = time.monotonic,
                 on_step: Callable[[Step, Experiment], None] | None = None):
        self.signature = signature
        self.run = run
        self.needed, self.tries = confirm
        self.deadline = None if budget is None else clock() + budget
        self.clock = clock
        self.on_step = on_step
        self.steps: list[Step] = []
        self.verdicts: dict[str, bool] = {}
        self.best: Experiment | None = None
        self.original: Experiment | None = None
        self.taken: list[Experiment] = []
        """The accepted candidates in order, the original first: where a failed confirmation steps back to."""
        self.out_of_budget = False

    def shrink(self, failing: Experiment) -> Experiment:
        """The smallest experiment reached that still fails with the signature (`failing` itself
        is taken to fail: it is the recorded run)."""
        self.best = self.original = failing
        self.taken = [failing]
        self.verdicts[canonical_digest(failing)] = True
        while True:
            if not self.out_of_budget:
                try:
                    self._search()
                except OutOfBudget:
                    self.out_of_budget = True
            if self.best is self.original or self._confirmed(self.best):
                return self.best
            self.verdicts[canonical_digest(self.best)] = False  # taken on luck: as if it had passed
            self.taken.pop()
            self.best = self.taken[-1]

    def _search(self) -> None:
        before = None
        while before is not self.best:  # a pass that took nothing: no phase can help any more
            before = self.best
            for phase in (self._remove_faults, self._simplify_faults, self._shrink_workload):
                self.best = phase(self.best)

    @property
    def runs(self) -> int:
        return sum(len(step.trials) for step in self.steps)

    def _remove_faults(self, current: Experiment) -> Experiment:
        parts = 2
        while current.faults:
            faults = current.faults
            for change, fewer in chunk_removals(faults, min(parts, len(faults))):
                candidate = _with_faults(current, fewer)
                if candidate is not None and self._accepts(candidate, "remove", change):
                    current, parts = candidate, max(parts - 1, 2)
                    break
            else:
                if parts >= len(faults):
                    return current
                parts = min(2 * parts, len(faults))
        return current

    def _simplify_faults(self, current: Experiment) -> Experiment:
        """Fault by fault, aspect by aspect: an aspect is pressed while it helps, then left behind
        (going back to it after every later step would cost a run each time for little)."""
        for index in range(len(current.faults)):
            for aspect in dict.fromkeys(s.aspect for s in simplifications(current.faults[index])):
                current = self._press(current, aspect, lambda e: [
                    (f"fault {index}: {s.change}", self._replaced(e, index, s.fault))
                    for s in simplifications(e.faults[index]) if s.aspect == aspect], "simplify")
        return current

    def _shrink_workload(self, current: Experiment) -> Experiment:
        for aspect in ASPECTS:
            current = self._press(current, aspect, lambda e: [
                (change, _updated(e, update)) for change, update in _smaller(e, self.original) if
                change.startswith(aspect)], "workload")
        return current

    def _press(self, current: Experiment, aspect: str,
               candidates: Callable[[Experiment], list[tuple[str, Experiment | None]]], phase: str) -> Experiment:
        """Take the first accepted candidate of `aspect`, again and again, until none is accepted."""
        while True:
            for change, candidate in candidates(current):
                if candidate is not None and self._accepts(candidate, phase, change):
                    current = candidate
                    break
            else:
                return current

    @staticmethod
    def _replaced(experiment: Experiment, index: int, fault: Fault) -> Experiment | None:
        faults = [*experiment.faults[:index], fault, *experiment.faults[index + 1:]]
        return None if overlapping(faults, SETTLE) else _with_faults(experiment, faults)

    def _accepts(self, candidate: Experiment, phase: str, change: str) -> bool:
        """Whether the candidate fails with the signature K of N times (stopping as soon as that is
        decided either way); cached, so a candidate reached twice is run once."""
        digest = canonical_digest(candidate)
        if digest in self.verdicts:
            accepted = self.verdicts[digest]
            self._record(Step(phase, change, digest, accepted, cached=True), candidate)
        else:
            accepted = self._tally(Step(phase, change, digest, False), candidate, within_budget=True).accepted
            self.verdicts[digest] = accepted
        if accepted:
            self.best = candidate
            self.taken.append(candidate)
        return accepted

    def _confirmed(self, candidate: Experiment) -> bool:
        """Whether the end of a search fails K of N times once more, run afresh (not from the cache).
        It runs even past the budget: a reproducer that does not reproduce is worth less than the
        minute it takes to find out."""
        step = Step("confirm", f"the minimal ({_size(candidate)}) afresh", canonical_digest(candidate), False)
        return self._tally(step, candidate, within_budget=False).accepted

    def _tally(self, step: Step, candidate: Experiment, within_budget: bool) -> Step:
        """Run the candidate until K matching failures of N runs are decided either way; record the step."""
        matches = 0
        for attempt in range(self.tries):
            if matches >= self.needed or (self.tries - attempt) + matches < self.needed:
                break
            if within_budget and self.deadline is not None and self.clock() >= self.deadline:
                if step.trials:
                    self._record(step, candidate)
                raise OutOfBudget
            trial = self.run(candidate, f"step-{len(self.steps) + 1:03d}-{attempt + 1}")
            step.trials.append(trial)
            matches += trial.status == "fail" and trial.signature == self.signature
        step.accepted = matches >= self.needed
        self._record(step, candidate)
        return step

    def _record(self, step: Step, candidate: Experiment) -> None:
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step, candidate)


ASPECTS = ("records", "rate", "workers", "partitions", "checkpoint_interval")
"""The workload and topology, in the order they are shrunk."""


def _smaller(experiment: Experiment, original: Experiment) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """One-step smaller workloads and topologies. A lower rate never makes the workload run longer
    than the original's did, so a reproducer stays quick to run."""
    workload, pipeline = experiment.workload, experiment.pipeline
    if workload.records // 2 >= MIN_RECORDS:
        yield f"records {workload.records} -> {workload.records // 2}", {"workload": {"records": workload.records // 2}}
    slowest = max(MIN_RATE, workload.records * original.workload.rate / original.workload.records)
    if workload.rate / 2 >= slowest:
        yield f"rate {workload.rate:g} -> {workload.rate / 2:g}", {"workload": {"rate": workload.rate / 2}}
    if pipeline.workers > 1 and not pipeline.commands:  # a command pipeline's processes are the ones written
        yield f"workers {pipeline.workers} -> {pipeline.workers - 1}", {"pipeline": {"workers": pipeline.workers - 1}}
    if workload.partitions > 1:
        yield (f"partitions {workload.partitions} -> {workload.partitions - 1}",
               {"workload": {"partitions": workload.partitions - 1}})
    if pipeline.checkpoint_interval * 2 <= MAX_CHECKPOINT_INTERVAL:
        yield (f"checkpoint_interval {pipeline.checkpoint_interval:g}s -> {pipeline.checkpoint_interval * 2:g}s",
               {"pipeline": {"checkpoint_interval": pipeline.checkpoint_interval * 2}})


def _with_faults(experiment: Experiment, faults: list[Fault]) -> Experiment | None:
    return _updated(experiment, {"faults": [f.model_dump(mode="json", exclude_none=True) for f in faults]})


def _updated(experiment: Experiment, update: dict[str, Any]) -> Experiment | None:
    """The experiment with `update` merged in, validated as a whole as the loader would (a fault
    aimed at a worker that is gone, or past the last record, makes no candidate)."""
    body = experiment.model_dump(mode="json", exclude_none=True)
    for key, value in update.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    try:
        return Experiment.model_validate(body)
    except (ValidationError, ValueError):
        return None


def parse_confirm(text: str) -> tuple[int, int]:
    """`K/N`: a candidate must fail K of N runs."""
    needed, _, tries = text.partition("/")
    if not (needed.strip().isdigit() and tries.strip().isdigit()) or not 1 <= int(needed) <= int(tries):
        raise SpecError("--confirm", [f"expected K/N with 1 <= K <= N, such as 2/3, got {text!r}"])
    return int(needed), int(tries)


def shrink_run(run_dir: Path, budget: float | None, confirm: tuple[int, int], runs_dir: Path,
               env_file: Path | None, private: bool, keep_env: bool, console: Console) -> int:
    """Shrink the recorded failing run in `run_dir`; write minimal.yaml, shrink.json and shrink.html."""
    original = recorded_experiment(run_dir)
    signature = _signature(run_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    directory = runs_dir.resolve() / f"shrink-{original.name}-{stamp}"
    directory.mkdir(parents=True)
    started = time.monotonic()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[runs]} runs"),
               TextColumn("best: {task.fields[best]}"), TimeElapsedColumn(), TextColumn("{task.fields[budget]}"))
    with open_trials(directory, original, env_file, private, keep_env, console) as trials, \
            Progress(*columns, console=console) as progress:
        task = progress.add_task("shrinking", runs=0, best=_size(original),
                                 budget=f"of {budget:.0f}s budget" if budget else "")

        def show(step: Step, candidate: Experiment) -> None:
            verdict = "taken" if step.accepted else "not taken"
            progress.update(task, description=f"{step.phase}: {step.change} ({verdict})", runs=shrinker.runs,
                            best=_size(shrinker.best or original))

        shrinker = Shrinker(signature, trials.run, confirm, budget, on_step=show)
        smallest = shrinker.shrink(original)
    minimal = smallest.model_copy(update={
        "name": f"{original.name}-minimal",
        "description": f"shrunk by chaos shrink from {run_dir.resolve()}: fails {', '.join(sorted(signature))}"})
    (directory / "minimal.yaml").write_text(dump_experiment(minimal))
    report = {"run_dir": str(run_dir.resolve()), "signature": sorted(signature),
              "confirm": f"{confirm[0]}/{confirm[1]}",
              "budget_seconds": budget, "out_of_budget": shrinker.out_of_budget,
              "seconds": round(time.monotonic() - started, 1), "runs": shrinker.runs,
              "original": _shape(original), "minimal": _shape(minimal),
              "steps": [step.as_json() for step in shrinker.steps]}
    (directory / "shrink.json").write_text(json.dumps(report, indent=2))
    rows = [{"label": f"{i + 1}", "change": f"{s['phase']}: {s['change']}",
             "status": "taken" if s["accepted"] else "not taken",
             "failed": [", ".join(r["failed"]) or r["status"] for r in s["runs"]] or ["cached"],
             "seconds": s["seconds"]} for i, s in enumerate(report["steps"])]
    write_page(directory / "shrink.html", f"shrink {original.name}",
               [f"{_size(original)} -> {_size(minimal)} in {report['runs']} runs ({report['seconds']}s); "
                f"the failure kept: {', '.join(sorted(signature))}"], rows)
    console.print(f"shrunk {_size(original)} to {_size(minimal)} in {shrinker.runs} runs"
                  + (" (the budget ran out first)" if shrinker.out_of_budget else ""), highlight=False)
    console.print(describe(minimal.faults), markup=False, highlight=False, end="")
    console.print(f"reproduce: python -m chaos run {directory / 'minimal.yaml'}", highlight=False)
    return EXIT_OK


def _signature(run_dir: Path) -> frozenset[str]:
    try:
        result = json.loads((run_dir / "result.json").read_text())
        failed = frozenset(v["invariant"] for v in result["verdicts"] if v["status"] == "fail")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SpecError(str(run_dir / "result.json"), [f"not a finished run: {e}"]) from None
    if not failed:
        raise SpecError(str(run_dir), [f"the run did not fail ({result.get('status')}): there is nothing to shrink"])
    return failed


def _shape(experiment: Experiment) -> dict[str, Any]:
    return {"faults": len(experiment.faults), "records": experiment.workload.records, "rate": experiment.workload.rate,
            "workers": experiment.pipeline.workers, "partitions": experiment.workload.partitions,
            "checkpoint_interval": experiment.pipeline.checkpoint_interval}


def _size(experiment: Experiment) -> str:
    return f"{len(experiment.faults)} faults, {experiment.workload.records} records"
