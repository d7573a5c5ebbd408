"""Deliberately buggy connector variants: the checkers must catch every one of them.

Each mutant is a small, realistic mistake in an otherwise correct driver, selected by
`pipeline.mutant` in an experiment. They exist so that an experiment can prove a checker fails
when the bug it guards against is really there.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pyarrow as pa
import pyarrow.compute as pc

from drivers.contracts import CommitHandle
from drivers.hudi import HudiTwoPhaseSink
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


class TruncatingWidenSink(TwoPhaseParquetSink):
    """Keeps writing a widened column under its old, narrower type: values past int32 wrap around
    silently, the way a sink that never reads the new schema would store them."""

    def write(self, records: pa.Table) -> None:
        if "score" in records.column_names and records.schema.field("score").type != pa.int32():
            index = records.schema.get_field_index("score")
            records = records.set_column(index, "score", pc.cast(records["score"], pa.int32(), safe=False))
        super().write(records)


class NonAtomicCommitSink(TwoPhaseParquetSink):
    """Splits each checkpoint into many small files and publishes them one by one, pausing between
    renames, so a reader polling the directory sees part of a commit."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, max_file_rows=50, **kwargs)  # type: ignore[arg-type]

    def commit(self, handle: CommitHandle) -> None:
        for pending, final in handle.payload.get("files", []):
            src = self.output_dir / pending
            if src.exists() and not (self.output_dir / final).exists():
                os.replace(src, self.output_dir / final)
                time.sleep(0.3)
        super().commit(handle)  # finds the files moved, and writes the manifest


class DropLateSink(TwoPhaseParquetSink):
    """A late-event side output that accepts records and writes none: late events vanish silently."""

    def write(self, records: pa.Table) -> None:
        pass


class LeakyRollbackHudiSink(HudiTwoPhaseSink):
    """Seeded bug: "rolls back" a failed instant by removing its timeline entries only, skipping
    the deletion of its base files. The files of a failed instant older than every instant left on
    the timeline then read as committed (hudi-rs, like Java Hudi, treats them as archived commits):
    rows that were never committed become visible. Used to prove the visibility check can fail."""

    def _delete_data_files(self, instant: str) -> None:
        pass
