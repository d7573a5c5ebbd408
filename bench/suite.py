"""Wall time of the whole test suite (what `make test` runs), and where it goes.

Why: CI runs the suite on every change, and a suite that takes an hour is one people stop running.
The figure that matters is the wall time; the ratio within the run is the parallel speed-up (the
sum of every test's own time over the wall time), and the per-module sums say which module to cut.

The suite runs as `python -m pytest -n N` in a child process from the repository's root, with a
JUnit XML report in a temporary directory, whose per-test times are summed per module.

    .venv/bin/python -m bench.suite [--workers 2] [--slowest 15] [TEST_PATH ...]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from bench.common import REPO, show, timed, write_results


def run_suite(workers: int, junit: Path, paths: list[str]) -> int:
    """pytest's exit code; its output goes to this process's (the run is long: it shows progress)."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
            "-n", str(workers), *paths]
    return subprocess.run(argv, cwd=REPO, check=False).returncode


def test_times(junit: Path) -> list[dict[str, Any]]:
    """Each test case of the JUnit report: its module, name, seconds and outcome."""
    cases = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        module = case.get("classname", "").split(".")[-1] or "?"
        cases.append({"module": module, "name": case.get("name", ""), "seconds": float(case.get("time", 0)),
                      "outcome": outcome})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers, 0 for one process "
                        "(default: 2, as make test)")
    parser.add_argument("--slowest", type=int, default=15, help="how many of the slowest tests to list")
    parser.add_argument("paths", nargs="*", help="only these tests (default: the whole suite, as make test)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chaos-bench-suite-") as scratch:
        junit = Path(scratch) / "junit.xml"
        code, wall = timed(lambda: run_suite(args.workers, junit, args.paths))
        cases = test_times(junit) if junit.exists() else []
    per_module: collections.Counter[str] = collections.Counter()
    for case in cases:
        per_module[case["module"]] += case["seconds"]
    summed = sum(per_module.values())
    outcomes = collections.Counter(case["outcome"] for case in cases)
    show("Test suite wall time", ["workers", "wall (s)", "tests", "sum of test times (s)", "speed-up", "exit code"],
         [(args.workers, wall, len(cases), summed, f"{summed / wall:.2f}x", code)])
    show("Where it goes, per module", ["module", "seconds", "share"],
         [(module, seconds, f"{seconds / summed:.0%}") for module, seconds in per_module.most_common(20)])
    slowest = sorted(cases, key=lambda case: case["seconds"], reverse=True)[:args.slowest]
    show("Slowest tests", ["module", "test", "seconds"],
         [(case["module"], case["name"], case["seconds"]) for case in slowest], left=2)
    write_results("suite", {"workers": args.workers, "exit_code": code, "wall_s": round(wall, 1),
                            "tests": len(cases), "outcomes": dict(outcomes), "test_time_sum_s": round(summed, 1),
                            "per_module_s": {module: round(s, 1) for module, s in per_module.most_common()},
                            "slowest": slowest})
    sys.exit(code)


if __name__ == "__main__":
    main()
