"""Mutation testing of the checkers and the certification evidence: can the unit tests fail?

Why: every verdict the testbed gives rests on the checkers, and a checker whose unit tests pass
whatever it computes proves nothing. mutmut changes one thing at a time in `chaos/checkers/` and
`chaos/certification/evidence.py` (a `<` for a `<=`, a constant, a dropped argument) and runs the
unit tests that cover the changed function; a mutant the tests do not notice "survives". The goal
is that at least 90% of the checkers' mutants are killed, with every survivor explained in
docs/benchmarks.md as equivalent or fixed by a new test.

mutmut keeps its results in `mutants/` and reruns only what changed. The figures, with every
survivor by name, go to bench/results/mutation.json.

    .venv/bin/python -m bench.mutation [--goal 0.9] [--max-children N]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.common import REPO, show, write_results

MUTMUT = Path(sys.executable).with_name("mutmut")
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
"""A mutant the tests noticed: a failing test, a hang cut short, or a crash of the test process."""
NOT_RUN = {"skipped", "not checked"}
_RESULT = re.compile(r"^\s*(?P<name>[\w.ǁ]+)__mutmut_\d+: (?P<status>.+)$")


def module_of(mutant_function: str) -> str:
    """`chaos.checkers.loss.x_check_loss` -> `chaos.checkers.loss`."""
    return re.split(r"\.x_|\.xǁ", mutant_function, maxsplit=1)[0]


def tally(results: str) -> tuple[dict[str, collections.Counter[str]], list[str]]:
    """Per module, how many mutants ended in each status; and every mutant the tests missed."""
    by_module: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    missed = []
    for line in results.splitlines():
        match = _RESULT.match(line)
        if match is None:
            continue
        status = match["status"].strip()
        by_module[module_of(match["name"])][status] += 1
        if status not in DETECTED | NOT_RUN:
            missed.append(line.strip())
    return by_module, missed


def score(counts: collections.Counter[str]) -> tuple[int, int]:
    """(detected, judged): mutants that were run, and how many of them the tests noticed."""
    judged = sum(n for status, n in counts.items() if status not in NOT_RUN)
    return sum(counts[s] for s in DETECTED), judged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goal", type=float, default=0.9, help="the share of the checkers' mutants to kill")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    # The unit tests' temporary directories go under mutants/, so that pytest's clean-up of old
    # ones never touches those of another pytest run on the machine.
    temp_root = REPO / "mutants" / "pytest-tmp"
    temp_root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTEST_DEBUG_TEMPROOT": str(temp_root)}
    subprocess.run([str(MUTMUT), "run", "--max-children", str(args.max_children)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, env=env)
    results = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout
    by_module, missed = tally(results)
    rows, figures = [], {}
    for module in sorted(by_module):
        detected, judged = score(by_module[module])
        figures[module] = {"detected": detected, "judged": judged, **by_module[module]}
        rows.append((module, judged, detected, judged - detected, f"{detected / judged:.1%}" if judged else "-"))
    checkers = collections.Counter[str]()
    for module, counts in by_module.items():
        if module.startswith("chaos.checkers."):
            checkers.update(counts)
    detected, judged = score(checkers)
    checkers_score = detected / judged if judged else 0.0
    show("Mutation testing (mutmut, against tests/unit)", ["module", "mutants", "killed", "survived", "score"], rows,
         note=f"chaos/checkers: {detected} of {judged} killed ({checkers_score:.1%}); goal {args.goal:.0%}")
    for line in missed:
        print(line)
    write_results("mutation", {"modules": figures, "checkers_score": round(checkers_score, 4),
                               "goal": args.goal, "survivors": missed})
    return 0 if checkers_score >= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
