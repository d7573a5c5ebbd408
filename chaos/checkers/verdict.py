"""The result of one invariant check: a status, counts and a few example record ids.

A verdict is `pass`, `fail` (the system under test broke the invariant), `info` (counted and
reported, not required: duplicates under at least once), or `inconclusive` (the run could not tell:
a fault never fired, or met no pipeline traffic). An inconclusive verdict is never a violation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import pyarrow as pa

Status = Literal["pass", "fail", "info", "inconclusive"]
EXAMPLES = 5
INVARIANTS = frozenset({
    "readable-output", "no-loss", "duplicates", "no-phantoms", "source-lost-acked-writes", "atomic-visibility",
    "non-monotonic-read", "aborted-read", "premature-read", "poll-skip", "non-monotonic-poll", "duplicate-delivery",
    "lost-write", "prefix",
    "per-key-order", "schema-compatibility", "late-events", "liveness", "no-orphans", "drained",
    "faults-applied", "faults-met-traffic",
})
"""Every invariant a checker judges: a verdict under any other name is a bug in that checker, and
would go unnoticed by a report that looks verdicts up by name."""


@dataclass(frozen=True)
class Verdict:
    invariant: str
    status: Status
    summary: str
    counts: dict[str, int] = field(default_factory=dict)
    examples: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.invariant not in INVARIANTS:
            raise ValueError(f"unknown invariant {self.invariant!r}; known: {', '.join(sorted(INVARIANTS))}")
        if self.status not in get_args(Status):
            raise ValueError(f"{self.invariant}: unknown status {self.status!r}")
        if not isinstance(self.summary, str) or not self.summary.strip():
            raise ValueError(f"{self.invariant}: a verdict must say why, in its summary")

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def inconclusive(self) -> bool:
        return self.status == "inconclusive"


def examples(ids: pa.Array | pa.ChunkedArray) -> list[int]:
    """The smallest few ids, so that two runs of the same seed report the same examples."""
    return sorted(ids.to_pylist())[:EXAMPLES]
