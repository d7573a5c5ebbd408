"""A bounded, replayable source over a directory of Parquet files, one row group per poll.

Splits are files; a position is the index of the next row group to hand out in each owned file.
Because a row group is an immutable unit of a finished file, re-reading from a checkpointed
position yields exactly the same rows: the source is replayable, and its "commit" (`ack`) has
nothing to do, since the position lives in the checkpoint alone.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from chaos.workload.records import SCHEMA
from drivers.contracts import CrashHook, Positions


def input_files(input_dir: Path) -> list[str]:
    """The input's Parquet file names, sorted: hidden (".") and metadata ("_") names are skipped,
    as pyarrow datasets skip them, so half-written or staged files are never read."""
    return sorted(
        p.name for p in input_dir.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and p.name.endswith(".parquet")
    )


class ParquetBatchSource:
    """This worker reads the files whose index in the sorted list is `worker` modulo `workers`."""

    def __init__(self, input_dir: Path, crash: CrashHook):
        self.input_dir = Path(input_dir)
        self.crash = crash
        self._files: list[str] = []
        self._row_groups: dict[str, int] = {}
        self._next: dict[str, int] = {}
        self._reader: tuple[str, pq.ParquetFile] | None = None

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        """Take this worker's files; `start` restores positions, looked up by file name.

        Positions for files this worker does not own are ignored, and an owned file missing from
        `start` starts at its first row group: a merged, all-workers position map restores any
        worker count, since ownership is recomputed from the (stable) sorted file list.
        """
        if not 0 <= worker < workers:
            raise ValueError(f"worker {worker} is not in 0..{workers - 1}")
        self.close()
        every = input_files(self.input_dir)
        self._files = [name for i, name in enumerate(every) if i % workers == worker]
        self._row_groups = {
            name: pq.ParquetFile(self.input_dir / name).metadata.num_row_groups for name in self._files
        }
        start = start or {}
        self._next = {}
        for name in self._files:
            position = int(start.get(name, 0))
            if position < 0:
                raise ValueError(f"negative position {position} for {name}")
            self._next[name] = position

    def _current(self) -> str | None:
        """The first owned file (in sorted order) that still has row groups to hand out."""
        for name in self._files:
            if self._next[name] < self._row_groups[name]:
                return name
        return None

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        """The next whole row group; a batch source never waits, so `timeout` is unused.

        `max_records` is not enforced: splitting a row group would need sub-row-group positions,
        and whole row groups keep a position an exact, replayable boundary.
        """
        name = self._current()
        if name is None:
            return SCHEMA.empty_table()
        if self._reader is None or self._reader[0] != name:
            if self._reader is not None:
                self._reader[1].close()
            self._reader = (name, pq.ParquetFile(self.input_dir / name))
        table = self._reader[1].read_row_group(self._next[name])
        self._next[name] += 1
        self.crash.hit("source.poll.after")
        return table

    def snapshot_positions(self) -> Positions:
        return dict(self._next)

    def ack(self, positions: Positions) -> None:
        """Nothing to commit upstream: the checkpoint that holds `positions` is the commit."""
        self.crash.hit("source.ack.before")

    def exhausted(self) -> bool:
        return self._current() is None

    def close(self) -> None:
        if self._reader is not None:
            self._reader[1].close()
            self._reader = None
