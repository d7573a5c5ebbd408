"""Deliberately buggy connector variants: the checkers must catch every one of them.

Each mutant is a small, realistic mistake in an otherwise correct driver, selected by
`pipeline.mutant` in an experiment. They exist so that an experiment can prove a checker fails
when the bug it guards against is really there.
"""

from __future__ import annotations

import shutil
import uuid

from drivers.contracts import CommitHandle
from drivers.parquet_sinks import TwoPhaseParquetSink


class NonIdempotentCommitSink(TwoPhaseParquetSink):
    """Commits by *copying* each pending file to a fresh name, and keeps no manifest, so a recovery
    that re-commits the last checkpoint publishes its rows a second time."""

    def commit(self, handle: CommitHandle) -> None:
        self.crash.hit("sink.commit.before")
        for pending, final in handle.payload.get("files", []):
            src = self.output_dir / pending
            if src.exists():
                shutil.copyfile(src, self.output_dir / f"{final[:-len('.parquet')]}-{uuid.uuid4().hex[:6]}.parquet")
        self.crash.hit("sink.commit.after")
