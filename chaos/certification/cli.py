"""`chaos certify`: choose the rows, run the suite, write the reports, and set the exit code."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from chaos.certification.report import build_report, print_plan, print_summary, write_reports
from chaos.certification.scenarios import certification_rows, slug
from chaos.certification.suite import run_suite
from chaos.errors import EXIT_ENVIRONMENT, EXIT_INCONCLUSIVE, EXIT_OK, EXIT_VIOLATION, SpecError
from faults.targets import known


def certify(row_names: list[str] | None, quick: bool, mutants: bool, runs_dir: Path, env_file: Path | None,
            private: bool, console: Console, only_plan: bool = False, keep_env: bool = False) -> int:
    """Exit 1 when a connector labelled Certified fails the suite or a mutant survives; else 3 when a
    case or mutant ended in an environment failure (twice: it is retried once on a fresh environment);
    else 4 when one was inconclusive; else 0."""
    if only_plan:
        print_plan(console)
        return EXIT_OK
    rows = certification_rows()
    if row_names:
        by_slug = {slug(r): r for r in rows}
        try:
            rows = [by_slug[known(name, list(by_slug), "row")] for name in row_names]
        except ValueError as e:
            raise SpecError("--row", [str(e)]) from None
    suite = run_suite(rows, quick, mutants, runs_dir, env_file, private, console, keep_env)
    report = build_report(suite)
    write_reports(suite.directory, report)
    print_summary(console, report, suite.directory)
    return {"pass": EXIT_OK, "fail": EXIT_VIOLATION, "error": EXIT_ENVIRONMENT,
            "inconclusive": EXIT_INCONCLUSIVE}[report["status"]]
