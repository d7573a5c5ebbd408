"""Wall time of the certification suite: `chaos certify --quick` and the full suite.

Why: CI runs `--quick` on every change, and a connector team runs the full suite before a release;
both must stay short enough that people do. Each mode runs on private environments (their start-up
is included), exactly as `chaos certify --private-env [--jobs N]` would. The quick suite runs on one
lane and on `--jobs` lanes, so the speed-up is a ratio within one run.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.common import median, show, timed, write_results
from chaos.certification.cli import certify


def run_mode(quick: bool, jobs: int) -> dict[str, Any]:
    runs_dir = Path(tempfile.mkdtemp(prefix="chaos-bench-certify-"))
    quiet = Console(file=io.StringIO(), width=120)
    code, seconds = timed(lambda: certify(None, quick, False, runs_dir, None, True, quiet, jobs=jobs))
    (directory,) = runs_dir.glob("certification-*")
    report = json.loads((directory / "certification.json").read_text())
    runs = [run for row in report["rows"] for s in row["scenarios"] for run in s["runs"]]
    return {"exit_code": code, "jobs": jobs, "wall_s": round(seconds, 1), "cases": len(runs),
            "case_s_median": round(median([r["seconds"] for r in runs]), 1),
            "case_s_max": round(max(r["seconds"] for r in runs), 1),
            "failed_cases": sum(r["status"] != "pass" for r in runs), "report": str(directory)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick-only", action="store_true", help="skip the full suite (about three times longer)")
    parser.add_argument("--jobs", type=int, default=2, help="lanes for the parallel runs (default: 2)")
    args = parser.parse_args()
    figures = {"quick": run_mode(True, 1), f"quick --jobs {args.jobs}": run_mode(True, args.jobs)}
    if not args.quick_only:
        figures[f"full --jobs {args.jobs}"] = run_mode(False, args.jobs)
    show("Certification suite wall time", ["mode", "wall (s)", "vs quick on one lane", "cases", "median case (s)",
                                           "slowest case (s)", "failed cases"],
         [(mode, f["wall_s"], f"{f['wall_s'] / figures['quick']['wall_s']:.2f}x", f["cases"], f["case_s_median"],
           f["case_s_max"], f["failed_cases"]) for mode, f in figures.items()])
    write_results("certify", figures)


if __name__ == "__main__":
    main()
