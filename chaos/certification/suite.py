"""`chaos certify`: runs the certification cases (and the mutant proofs) on a shared environment
(or, with `--jobs N`, on N environments at once).

Every case is an ordinary `chaos run` of a committed experiment, so its run directory has the
usual result.json, report.html and junit.xml, and `chaos replay` repeats it. The suite keeps each
run's terminal output in a log file and shows its own progress instead.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chaos.certification.evidence import missing_evidence
from chaos.certification.lanes import Lanes
from chaos.certification.mutants import Mutant
from chaos.certification.plan import REPO, Case, materialize, plan, with_mutant
from chaos.env.acquire import acquire_environment
from chaos.errors import EXIT_ENVIRONMENT, ChaosError
from chaos.experiment.shape import KafkaShape
from chaos.matrix import Row
from chaos.report.result import Outcome as RunOutcome
from chaos.runner import run_file
from drivers.sdk.events import Event
from drivers.sdk.history import read_history


@dataclass
class Outcome:
    """One run of the suite: a certification case or a mutant proof."""

    name: str
    status: str
    """pass or fail for a case; killed or survived for a mutant. `error` when the run did not complete
    (the environment failed, or the experiment was invalid) and `inconclusive` when it did not do
    what it said (a fault never fired, or met no traffic): no verdict on the connector either way."""
    run_dir: Path | None = None
    failed: list[str] = field(default_factory=list)
    """The failing invariants, and any missing evidence that the scenario happened."""
    message: str = ""
    seconds: float = 0.0
    exit_code: int = 0
    control: "Outcome | None" = None
    """For a mutant: the same experiment without the bug, which must pass."""
    unproven: bool = False
    """Every invariant held, but the run did not show the scenario's evidence: a case fails for it
    only when its second run does not show it either."""


UNDECIDED = ("error", "inconclusive")
"""Outcomes that say nothing about the connector: never a failure, never a lowered label."""


@dataclass
class SuiteRun:
    directory: Path
    quick: bool
    rows: list[Row]
    cases: dict[str, Outcome]
    mutants: dict[str, Outcome] | None
    seconds: float


def run_suite(rows: list[Row], quick: bool, mutants: list[Mutant] | None, runs_dir: Path, env_file: Path | None,
              private: bool, console: Console, keep_env: bool = False, jobs: int = 1) -> SuiteRun:
    """The cases of `rows`, then the seeded bugs in `mutants` (None: no mutant proofs at all), on
    `jobs` lanes at once, each with an environment of its own (`chaos/certification/lanes.py`)."""
    started = time.monotonic()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    directory = runs_dir.resolve() / f"certification-{stamp}{'-quick' if quick else ''}"
    (directory / "logs").mkdir(parents=True)
    cases = plan(rows, quick)
    with ExitStack() as stack:
        env = acquire_environment(None if private else env_file, private, True, directory / "env", stack, console,
                                  keep_env)
        fresh = iter(range(1, 1 << 30))
        starting = threading.Lock()  # lanes start environments on their own threads; one stack owns them all

        def fresh_environment(brokers: int = 1) -> Path:
            """A new private environment: for a lane, for its cluster cases, and for a case whose
            environment failed."""
            with starting:
                env = acquire_environment(None, True, True, directory / f"env-{next(fresh)}", stack, console,
                                          keep_env, shape=KafkaShape(brokers))
            return Path(env.state.workdir) / "state.json"

        def lane_failed(number: int, error: BaseException) -> None:
            console.print(f"[yellow]lane {number} has no environment ({error}); the other lanes take its cases[/]")

        first = CaseRunner(directory, Path(env.state.workdir) / "state.json", fresh_environment)
        lanes = Lanes(jobs, first, lambda _: CaseRunner(directory, fresh_environment(), fresh_environment), lane_failed)
        items: list[Case | Mutant] = [*cases, *(mutants or [])]
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("certifying", total=len(items))

            def begin(item: Case | Mutant) -> None:
                progress.update(task, description=item.id if isinstance(item, Case) else f"mutant {item.name}")

            def end(item: Case | Mutant, outcome: Outcome) -> None:
                _print(console, outcome, {"pass": "green"} if isinstance(item, Case) else {"killed": "green"})
                progress.advance(task)

            def work(runner: CaseRunner, item: Case | Mutant) -> Outcome:
                return runner.case(item, quick) if isinstance(item, Case) else runner.mutant(item)

            outcomes = lanes.run(items, work, begin, end)
    results = {case.id: outcome for case, outcome in zip(cases, outcomes)}
    killed = {mutant.name: outcome for mutant, outcome in zip(mutants or [], outcomes[len(cases):])}
    return SuiteRun(directory, quick, rows, results, killed if mutants is not None else None,
                    time.monotonic() - started)


def _print(console: Console, outcome: Outcome, good: dict[str, str]) -> None:
    style = good.get(outcome.status, "bold red")
    detail = ", ".join(outcome.failed) or outcome.message
    console.print(f"[{style}]{outcome.status:>8}[/] {outcome.name} ({outcome.seconds:.0f}s)"
                  + (f": {detail}" if detail else ""), highlight=False)


class CaseRunner:
    """Runs cases and mutant proofs on one lane's environments: the one-broker one it is given, and
    a cluster started the first time a cluster case comes its way."""

    def __init__(self, directory: Path, state_file: Path, fresh_environment: Callable[[int], Path]):
        self.directory = directory
        self.state_files = {1: state_file}
        """The lane's environment of each broker count."""
        self.fresh_environment = fresh_environment

    def case(self, case: Case, quick: bool) -> Outcome:
        """One case, run once more when the first run proved nothing either way: inconclusive, or
        every invariant held but the scenario's evidence is missing (a fault that happened to meet
        an idle moment on a loaded machine). A real violation is never run again: it stands."""
        experiment = materialize(case, quick, self.directory / "experiments")
        if case.brokers not in self.state_files:
            try:
                self.state_files[case.brokers] = self.fresh_environment(case.brokers)
            except ChaosError as e:
                return Outcome(case.id, "error", None, [], f"no {case.brokers}-broker environment: {e}",
                               exit_code=EXIT_ENVIRONMENT)
        outcome = self._judged(case, experiment, case.id)
        if outcome.status == "inconclusive" or outcome.unproven:
            first = outcome.message or "; ".join(outcome.failed)
            outcome = self._judged(case, experiment, f"{case.id} again")
            outcome.message = "; ".join(filter(None, [outcome.message, f"run again after: {first}"]))
        return outcome

    def _judged(self, case: Case, experiment: Path, name: str) -> Outcome:
        """One run of a case, held to its invariants and to the scenario's evidence."""
        outcome = self.run(name, experiment, self.directory / "runs" / case.row.sink, case.brokers)
        if outcome.status not in UNDECIDED and outcome.run_dir is not None:
            result = json.loads((outcome.run_dir / "result.json").read_text())
            history = read_history(outcome.run_dir / "history.jsonl")
            missing = missing_evidence(case.scenario, case.row, result, history)
            outcome.unproven = bool(missing) and not outcome.failed
            outcome.failed += missing
            outcome.status = "fail" if outcome.failed else "pass"
        return outcome

    def mutant(self, mutant: Mutant) -> Outcome:
        """The experiment with the bug, which must fail its named invariant (in each of
        `mutant.repeats` runs, for a bug whose window depends on timing), and without it (the
        control run), which must pass: a checker that always fails, or a flaky environment, kills
        nothing."""
        experiments = self.directory / "experiments" / "mutants"
        runs = self.directory / "runs" / "mutants"
        outcome = self.run(mutant.name, with_mutant(REPO / mutant.path, mutant.name, experiments), runs)
        control = self.run(f"{mutant.name} control", with_mutant(REPO / mutant.path, None, experiments), runs)
        outcome.control = control
        if outcome.status in UNDECIDED:
            return outcome
        if control.status != "pass":
            outcome.status = "error" if control.status in UNDECIDED else "invalid-control"
            outcome.message = (f"the control run without the bug did not pass ({control.status}: "
                               f"{', '.join(control.failed) or control.message}), so failing proves nothing")
            return outcome
        self._judge(mutant, outcome)
        for repeat in range(1, mutant.repeats):
            if outcome.status != "killed":
                break
            again = self.run(f"{mutant.name} #{repeat + 1}",
                              with_mutant(REPO / mutant.path, mutant.name, experiments, repeat), runs)
            if again.status not in UNDECIDED:
                self._judge(mutant, again)
            if again.status != "killed":
                outcome.status, outcome.run_dir = again.status, again.run_dir
                outcome.message = f"run {repeat + 1} of {mutant.repeats} (seed + {repeat}): " + again.message
                break
        else:
            if mutant.repeats > 1:
                outcome.message = f"killed in each of {mutant.repeats} runs"
        return outcome

    @staticmethod
    def _judge(mutant: Mutant, outcome: Outcome) -> None:
        """killed, survived, or inconclusive when the bug never bit (no `mutant.active`)."""
        history = read_history(outcome.run_dir / "history.jsonl") if outcome.run_dir else []
        if not any(e.get("event") == Event.MUTANT_ACTIVE for e in history):
            outcome.status = "inconclusive"
            outcome.message = "the seeded bug never changed what the driver did (no mutant.active): proves nothing"
            return
        outcome.status = "killed" if mutant.caught_by in outcome.failed else "survived"
        if outcome.status == "survived":
            outcome.message = f"{mutant.caught_by} did not fail"

    def run(self, name: str, experiment: Path, runs_dir: Path, brokers: int = 1) -> Outcome:
        """Run once; a run whose environment failed is run again, once, on a fresh environment."""
        outcome = self._run_once(name, experiment, runs_dir, "", brokers)
        if outcome.exit_code != EXIT_ENVIRONMENT:
            return outcome
        first = outcome.message
        try:
            self.state_files[brokers] = self.fresh_environment(brokers)
        except ChaosError as e:
            outcome.message = f"{first}; no fresh environment for the retry: {e}"
            return outcome
        outcome = self._run_once(name, experiment, runs_dir, "-retry", brokers)
        outcome.message = "; ".join(filter(None, [outcome.message, f"retried on a fresh environment after: {first}"]))
        return outcome

    def _run_once(self, name: str, experiment: Path, runs_dir: Path, suffix: str, brokers: int) -> Outcome:
        log = self.directory / "logs" / (name.replace("/", "--") + suffix + ".log")
        started = time.monotonic()
        with log.open("w") as out:
            quiet = Console(file=out, width=120, soft_wrap=True)
            try:
                result = run_file(experiment, runs_dir, self.state_files[brokers], False, quiet)
            except ChaosError as e:
                quiet.print(f"error: {e}", markup=False)
                return Outcome(name, "error", None, [], str(e), time.monotonic() - started, e.exit_code)
        seconds = time.monotonic() - started
        if result.status == RunOutcome.INCONCLUSIVE:
            why = "; ".join(f"{v.invariant}: {v.summary}" for v in result.verdicts if v.inconclusive)
            return Outcome(name, "inconclusive", result.run_dir, [], why, seconds, result.exit_code)
        failed = [v.invariant for v in result.verdicts if v.failed]
        return Outcome(name, "fail" if failed else "pass", result.run_dir, failed, "", seconds, result.exit_code)
