"""The seeded-bug proofs: for each scenario, a deliberately buggy connector the suite must flag.

A mutant is killed when its experiment fails (exit 1) and the invariant named here is among the
failing verdicts: failing for some other reason would not prove that the checker meant for that
bug can see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MUTANTS_DIR = Path("experiments") / "mutants"


@dataclass(frozen=True)
class Mutant:
    name: str
    scenario: str
    """The slug of the certification scenario whose bug this is."""
    bug: str
    experiment: str
    """The file under experiments/mutants/."""
    caught_by: str
    """The invariant whose verdict must fail."""

    @property
    def path(self) -> Path:
        return MUTANTS_DIR / self.experiment


MUTANTS = (
    Mutant("reconnect-skip", "source-reconnect", "a reconnect that skips the records produced during the outage",
           "reconnect-skip.yaml", "no-loss"),
    Mutant("auto-commit", "ack-after-commit", "offsets committed before the sink has the batch",
           "auto-commit-kill.yaml", "no-loss"),
    Mutant("non-atomic-commit", "sink-write-failure", "staged files visible before the commit",
           "non-atomic-commit.yaml", "atomic-visibility"),
    Mutant("non-atomic-delta-commit", "sink-write-failure",
           "a Delta checkpoint committed in two table commits, half visible in between",
           "non-atomic-delta-commit.yaml", "atomic-visibility"),
    Mutant("non-idempotent-commit", "two-phase-commit", "a commit that is not idempotent on recovery",
           "non-idempotent-commit.yaml", "duplicates"),
    Mutant("truncating-widen", "schema-evolution", "schema widening that truncates values",
           "truncating-widen.yaml", "schema-compatibility"),
    Mutant("drop-late", "late-events", "late events dropped silently", "drop-late.yaml", "late-events"),
)
