"""The result of one invariant check: a status, counts and a few example record ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

Status = Literal["pass", "fail", "info"]
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


def examples(ids: pa.Array | pa.ChunkedArray) -> list[int]:
    """The smallest few ids, so that two runs of the same seed report the same examples."""
    return sorted(ids.to_pylist())[:EXAMPLES]
