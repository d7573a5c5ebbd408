"""The result of one invariant check: a status, counts and a few example record ids.

A verdict is `pass`, `fail` (the system under test broke the invariant), `info` (counted and
reported, not required: duplicates under at least once), or `inconclusive` (the run could not tell:
a fault never fired, or met no pipeline traffic). An inconclusive verdict is never a violation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

Status = Literal["pass", "fail", "info", "inconclusive"]
EXAMPLES = 5


@dataclass(frozen=True)
class Verdict:
    invariant: str
    status: Status
    summary: str
    counts: dict[str, int] = field(default_factory=dict)
    examples: list[int] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def inconclusive(self) -> bool:
        return self.status == "inconclusive"


def examples(ids: pa.Array | pa.ChunkedArray) -> list[int]:
    """The smallest few ids, so that two runs of the same seed report the same examples."""
    return sorted(ids.to_pylist())[:EXAMPLES]
