"""`chaos explore`: run an experiment again and again, each time with a fresh draw of its nemesis,
to find the fault schedules that break the pipeline.

Jepsen's way (rerun until it fails), with what a connector team needs next: every run's nemesis
seed and schedule digest, failures first, so that any failing draw can be replayed (`chaos replay`)
or shrunk (`chaos shrink RUN_DIR`). `--repeat N` runs one draw N times and counts each invariant's
failures: that is how a flaky failure, or a false alarm, is told apart from a real one.
"""

from __future__ import annotations

import collections
import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chaos.errors import EXIT_ENVIRONMENT, EXIT_OK, EXIT_VIOLATION, SpecError
from chaos.experiment import Experiment, load_experiment
from chaos.experiment.loader import expand_nemesis
from chaos.explore.pages import write_page
from chaos.explore.trials import Trial, open_trials, schedule_digest
from faults.nemesis import resolved_seed

_SEEDS = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")
ORDER = {"fail": 0, "error": 1, "inconclusive": 2, "invalid": 3, "pass": 4}
"""How runs are listed: failures first."""


def parse_seeds(text: str) -> list[int]:
    """`A..B`: the nemesis seeds A to B, both included."""
    match = _SEEDS.match(text)
    if not match or int(match.group(1)) > int(match.group(2)):
        raise SpecError("--seeds", [f"expected a range such as 1..20, got {text!r}"])
    return list(range(int(match.group(1)), int(match.group(2)) + 1))


def drawn(experiment: Experiment, seed: int) -> Experiment:
    """The experiment with its nemesis drawn from `seed` into plain faults."""
    assert experiment.nemesis is not None
    return expand_nemesis(experiment.model_copy(update={"nemesis": experiment.nemesis.model_copy(
        update={"seed": seed})}))


def explore(path: Path, runs: int | None, budget: float | None, until_fail: bool, seeds: list[int] | None,
            repeat: int | None, runs_dir: Path, env_file: Path | None, private: bool, keep_env: bool,
            console: Console) -> int:
    experiment = load_experiment(path, draw_nemesis=False)
    if experiment.nemesis is None:
        raise SpecError(str(path), ["`chaos explore` draws a fresh schedule from the experiment's `nemesis:` "
                                    "block for each run, and this experiment has none"])
    if seeds is None:
        first = resolved_seed(experiment.nemesis, experiment.seed)
        seeds = list(range(first, first + (runs or 10)))
    elif runs is not None:
        seeds = seeds[:runs]
    plan = [(seeds[0], i) for i in range(repeat)] if repeat else [(seed, 0) for seed in seeds]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    directory = runs_dir.resolve() / f"explore-{experiment.name}-{stamp}"
    directory.mkdir(parents=True)
    started = time.monotonic()
    trials: list[Trial] = []
    with open_trials(directory, experiment, env_file, private, keep_env, console) as runner:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[failures]} failed"), TimeElapsedColumn(),
                   TextColumn("{task.fields[budget]}"))
        budget_text = f"of {budget:.0f}s budget" if budget else ""
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("exploring", total=len(plan), failures=0, budget=budget_text)
            for seed, attempt in plan:
                if budget is not None and time.monotonic() - started >= budget:
                    console.print(f"budget of {budget:.0f}s spent after {len(trials)} runs")
                    break
                schedule = drawn(experiment, seed)
                label = f"seed-{seed}" + (f"-run-{attempt + 1}" if repeat else "")
                progress.update(task, description=label)
                trial = runner.run(schedule, label)
                trial.details = {"seed": seed, "schedule_digest": schedule_digest(schedule.faults),
                                 "faults": len(schedule.faults)}
                trials.append(trial)
                progress.update(task, advance=1, failures=sum(t.status == "fail" for t in trials))
                if until_fail and trial.status == "fail":
                    break
    report = explore_report(path, experiment, trials, budget, time.monotonic() - started, repeat)
    (directory / "explore.json").write_text(json.dumps(report, indent=2))
    write_page(directory / "explore.html", f"explore {experiment.name}", _summary(report), report["runs"])
    _print(console, report, directory)
    statuses = {t.status for t in trials}
    return EXIT_VIOLATION if "fail" in statuses else EXIT_ENVIRONMENT if "error" in statuses else EXIT_OK


def explore_report(path: Path, experiment: Experiment, trials: list[Trial], budget: float | None, seconds: float,
            repeat: int | None) -> dict[str, Any]:
    ordered = sorted(trials, key=lambda t: ORDER.get(t.status, 5))
    report: dict[str, Any] = {
        "experiment": str(path), "name": experiment.name, "seed": experiment.seed,
        "budget_seconds": budget, "seconds": round(seconds, 1), "runs_done": len(trials),
        "failures": sum(t.status == "fail" for t in trials), "runs": [t.as_json() for t in ordered]}
    if repeat:
        counts = collections.Counter(invariant for t in trials for invariant in t.failed)
        report["repeat"] = {"seed": trials[0].details["seed"] if trials else None, "runs": len(trials),
                            "failed_invariants": dict(sorted(counts.items())),
                            "statuses": dict(collections.Counter(t.status for t in trials))}
    return report


def _summary(report: dict[str, Any]) -> list[str]:
    lines = [f"{report['runs_done']} runs of {report['experiment']} in {report['seconds']}s; "
             f"{report['failures']} failed"]
    if "repeat" in report:
        repeat = report["repeat"]
        counts = ", ".join(f"{k}: {v} of {repeat['runs']}" for k, v in repeat["failed_invariants"].items())
        lines.append(f"one schedule (nemesis seed {repeat['seed']}) {repeat['runs']} times; failed: {counts or 'none'}")
    return lines


def _print(console: Console, report: dict[str, Any], directory: Path) -> None:
    table = Table(title=_summary(report)[0], title_justify="left")
    for column in ("seed", "schedule", "faults", "verdict", "failed", "run directory"):
        table.add_column(column)
    style = {"fail": "bold red", "pass": "green", "error": "yellow", "inconclusive": "magenta"}
    for run in report["runs"]:
        table.add_row(str(run["seed"]), run["schedule_digest"], str(run["faults"]),
                      f"[{style.get(run['status'], 'white')}]{run['status']}[/]", ", ".join(run["failed"]),
                      run["run_dir"] or run["message"])
    console.print(table)
    for line in _summary(report)[1:]:
        console.print(line, highlight=False)
    failing = [run for run in report["runs"] if run["status"] == "fail"]
    if failing:
        console.print(f"shrink the first failure: python -m chaos shrink {failing[0]['run_dir']}", highlight=False)
    console.print(f"report: {directory / 'explore.json'} and {directory / 'explore.html'}", highlight=False)
