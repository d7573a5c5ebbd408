"""A bounded, replayable source over a directory of Parquet files, one row group per poll.

Splits are files; a position is the index of the next row group to hand out in each owned file.
Because a row group is an immutable unit of a finished file, re-reading from a checkpointed
position yields exactly the same rows: the source is replayable, and its "commit" (`ack`) has
nothing to do, since the position lives in the checkpoint alone.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from drivers.row_groups import RowGroupSource, RowGroupSplits
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CrashHook, Positions
from drivers.sdk.records import SCHEMA


def input_files(input_dir: Path) -> list[str]:
    """The input's Parquet file names, sorted: hidden (".") and metadata ("_") names are skipped,
    as pyarrow datasets skip them, so half-written or staged files are never read."""
    return sorted(
        p.name for p in input_dir.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and p.name.endswith(".parquet")
    )


class ParquetBatchSource(RowGroupSource):
    """This worker reads the files whose index in the sorted list is `worker` modulo `workers`."""

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "ParquetBatchSource":
        return cls(Path(settings["input_dir"]), ctx.crash)

    def __init__(self, input_dir: Path, crash: CrashHook):
        self.input_dir = Path(input_dir)
        self.crash = crash
        self._schema = SCHEMA
        self.splits = RowGroupSplits(crash)

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        """Take this worker's files; `start` restores positions, looked up by file name."""
        self.splits.assign(input_files(self.input_dir), worker, workers, start or {},
                           lambda name: pq.ParquetFile(self.input_dir / name))

    def snapshot_positions(self) -> Positions:
        return self.splits.positions()
