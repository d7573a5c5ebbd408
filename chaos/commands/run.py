"""`chaos run FILE|DIR ...` and `chaos validate [--show] FILE ...`.

Several experiments (or directories of them) run one after another, each with its own run
directory, and a summary table ends the command. Every file is validated before any runs: one
invalid file refuses them all (exit 2), so a long batch never stops half-way on a typo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chaos.checks import planned_invariants
from chaos.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INCONCLUSIVE,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_VIOLATION,
    ChaosError,
    SpecError,
)
from chaos.experiment import Experiment, load_experiment
from faults.nemesis import describe

SEVERITY = (EXIT_VIOLATION, EXIT_ENVIRONMENT, EXIT_INCONCLUSIVE, EXIT_OK)
"""Which exit code a batch ends with: the first of these that any of its runs ended with."""


def experiment_files(paths: list[Path]) -> list[Path]:
    """The files given, with each directory replaced by the experiment files under it."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    return files


def print_problems(errors: Console, e: SpecError) -> None:
    for problem in e.problems:
        errors.print(f"[bold red]{escape(e.path)}[/]: {escape(problem)}", highlight=False)


def validate(paths: list[Path], show: bool, console: Console, errors: Console) -> int:
    code = EXIT_OK
    for path in experiment_files(paths):
        try:
            experiment = load_experiment(path)
        except SpecError as e:
            print_problems(errors, e)
            code = EXIT_INVALID
            continue
        console.print(f"{path}: ok ({experiment.name}, seed {experiment.seed}, {len(experiment.faults)} faults)",
                      markup=False, highlight=False)
        if show:
            _show(console, experiment)
    return code


def _show(console: Console, experiment: Experiment) -> None:
    """What a run of the experiment will do: its guarantee, its schedule, and its checks."""
    pipeline = experiment.pipeline
    console.print(f"  pipeline:   {pipeline.source} -> {pipeline.sink} ({pipeline.profile}), "
                  f"{pipeline.workers} worker(s)", markup=False, highlight=False)
    console.print(f"  guarantee:  {pipeline.guarantee.label} (no loss {'required' if experiment.requires_no_loss else 'not required'}, "
                  f"duplicates {'forbidden' if experiment.forbids_duplicates else 'allowed'})", markup=False, highlight=False)
    console.print(f"  invariants: {', '.join(planned_invariants(experiment))}", markup=False, highlight=False)
    console.print("  schedule:", markup=False)
    for line in describe(experiment.faults).splitlines():
        console.print(f"    {line}", markup=False, highlight=False)


@dataclass(frozen=True)
class Ran:
    file: Path
    name: str
    code: int
    outcome: str
    run_dir: Path | None


def run_all(paths: list[Path], runs_dir: Path, env_file: Path | None, private: bool, keep_env: bool,
            console: Console, errors: Console) -> int:
    from chaos.runner import run_file

    files = experiment_files(paths)
    invalid = []
    for path in files:
        try:
            load_experiment(path)
        except SpecError as e:
            invalid.append(e)
    for e in invalid:
        print_problems(errors, e)
    if invalid or not files:
        if not files:
            errors.print("no experiment files given", highlight=False)
        return EXIT_INVALID
    if len(files) == 1:
        return run_file(files[0], runs_dir, env_file, private, console, keep_env).exit_code
    ran = []
    for path in files:
        console.rule(str(path))
        try:
            result = run_file(path, runs_dir, env_file, private, console, keep_env)
            ran.append(Ran(path, result.run_dir.name, result.exit_code, str(result.status), result.run_dir))
        except ChaosError as e:
            errors.print(f"[bold red]{escape(str(path))}:[/] {escape(str(e))}", highlight=False)
            ran.append(Ran(path, path.stem, e.exit_code, "environment failure", None))
    table = Table(title=f"{len(ran)} experiments", title_justify="left")
    for column in ("file", "outcome", "exit", "run directory"):
        table.add_column(column)
    style = {EXIT_OK: "green", EXIT_VIOLATION: "bold red", EXIT_ENVIRONMENT: "yellow", EXIT_INCONCLUSIVE: "magenta"}
    for r in ran:
        table.add_row(str(r.file), f"[{style.get(r.code, 'white')}]{r.outcome}[/]", str(r.code),
                      str(r.run_dir) if r.run_dir else "-")
    console.print(table)
    codes = {r.code for r in ran}
    return next(code for code in SEVERITY if code in codes or code == EXIT_OK)
