"""`chaos certify`: choose the rows, run the suite, write the reports, and set the exit code."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from chaos.certification.mutants import MUTANTS
from chaos.certification.report import build_report, print_plan, print_summary, write_reports
from chaos.certification.scenarios import certification_rows, slug
from chaos.certification.suite import run_suite
from chaos.errors import EXIT_ENVIRONMENT, EXIT_INCONCLUSIVE, EXIT_OK, EXIT_VIOLATION, SpecError
from chaos.matrix import Row
from drivers.connectors import KINDS, all_mutants, plugin_problem
from drivers.engines import ENGINE_CONNECTORS
from drivers.sdk.connector import Mutant
from faults.targets import known


def _scope(connectors: list[str] | None) -> tuple[list[Row], tuple[Mutant, ...]]:
    """The rows and seeded bugs to run: ours, or those of the named kinds (built in or plug-ins)."""
    every = certification_rows()
    if not connectors:
        return [r for r in every if not r.plugin], MUTANTS
    names = sorted({k.name for k in KINDS})
    for connector in connectors:
        problem = plugin_problem(connector)
        if problem is not None and connector not in names:
            raise SpecError("--connector", [f"{connector!r} comes from a plug-in that could not be loaded: {problem}"])
        try:
            known(connector, names, "connector kind")
        except ValueError as e:
            raise SpecError("--connector", [str(e)]) from None
        if not any(connector in (r.source, r.sink) for r in every):
            raise SpecError("--connector", [f"{connector!r} joins no row that can be certified (Experimental?)"])
    rows = [r for r in every if r.source in connectors or r.sink in connectors]
    return rows, tuple(all_mutants([k for k in KINDS if k.name in connectors]))


def certify(row_names: list[str] | None, quick: bool, mutants: bool, runs_dir: Path, env_file: Path | None,
            private: bool, console: Console, only_plan: bool = False, keep_env: bool = False,
            connectors: list[str] | None = None, jobs: int = 1) -> int:
    """Our own rows and seeded bugs, or with `connectors` every row those kinds join and their own
    seeded bugs (a plug-in's, say). Exit 1 when a connector labelled Certified fails the suite or a mutant
    survives; else 3 when a case or mutant ended in an environment failure (twice: it is retried
    once on a fresh environment); else 4 when one was inconclusive; else 0."""
    if only_plan:
        print_plan(console)
        console.print("black-box connectors: chaos certify --engine ENGINE --connector NAME --plan "
                      f"({', '.join(f'{c.engine}/{c.name}' for c in ENGINE_CONNECTORS.values())})", highlight=False)
        return EXIT_OK
    rows, proofs = _scope(connectors)
    if row_names:
        by_slug = {slug(r): r for r in rows}
        try:
            rows = [by_slug[known(name, list(by_slug), "row")] for name in row_names]
        except ValueError as e:
            raise SpecError("--row", [str(e)]) from None
    suite = run_suite(rows, quick, list(proofs) if mutants else None, runs_dir, env_file, private, console, keep_env,
                      jobs)
    report = build_report(suite)
    write_reports(suite.directory, report)
    print_summary(console, report, suite.directory)
    return {"pass": EXIT_OK, "fail": EXIT_VIOLATION, "error": EXIT_ENVIRONMENT,
            "inconclusive": EXIT_INCONCLUSIVE}[report["status"]]
