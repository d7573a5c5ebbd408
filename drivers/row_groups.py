"""One worker's share of a list of Parquet files, handed out a whole row group at a time.

Every batch source (plain Parquet, Delta, Iceberg) ends up here once it knows its snapshot's file
list. A worker owns the files whose index in the sorted list is `worker` modulo `workers`; its
position is `{file: next row group}`, an exact, replayable boundary. Positions of files it does
not own are ignored and an owned file missing from them starts at its first row group, so a merged
position map restores any worker count.
"""

from __future__ import annotations

from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from drivers.sdk.contracts import CrashHook
from drivers.sdk.schema_watch import SchemaWatch

Opener = Callable[[str], pq.ParquetFile]


class RowGroupSplits:
    def __init__(self, crash: CrashHook, convert: Callable[[pa.Table], pa.Table] = lambda t: t,
                 watch: SchemaWatch | None = None):
        """`convert` turns a row group into the snapshot's schema; `watch` is shown each row
        group's schema as written, before that (a source that converts hides the change)."""
        self.crash = crash
        self.convert = convert
        self.watch = watch
        self._files: list[str] = []
        self._row_groups: dict[str, int] = {}
        self._next: dict[str, int] = {}
        self._open: Opener | None = None
        self._reader: tuple[str, pq.ParquetFile] | None = None

    def assign(self, every: list[str], worker: int, workers: int, positions: dict[str, int],
               open_file: Opener) -> None:
        if not 0 <= worker < workers:
            raise ValueError(f"worker {worker} is not in 0..{workers - 1}")
        self.close()
        self._open = open_file
        self._files = [name for i, name in enumerate(sorted(every)) if i % workers == worker]
        self._row_groups = {}
        for name in self._files:
            f = open_file(name)
            self._row_groups[name] = f.metadata.num_row_groups
            f.close()
        self._next = {}
        for name in self._files:
            position = int(positions.get(name, 0))
            if not 0 <= position <= self._row_groups[name]:
                raise ValueError(f"position {position} for {name} is outside 0..{self._row_groups[name]}")
            self._next[name] = position

    def _current(self) -> str | None:
        """The first owned file (in sorted order) that still has row groups to hand out."""
        return next((name for name in self._files if self._next[name] < self._row_groups[name]), None)

    def poll(self, empty: pa.Schema) -> pa.Table:
        """The next whole row group. Splitting one would need sub-row-group positions; whole row
        groups keep every position exact, so a batch source never enforces `max_records`."""
        name = self._current()
        if name is None:
            return empty.empty_table()
        if self._reader is None or self._reader[0] != name:
            self.close()
            assert self._open is not None
            self._reader = (name, self._open(name))
        written = self._reader[1].read_row_group(self._next[name])
        if self.watch is not None and written.num_rows:
            self.watch.see(written.schema, written["id"][0].as_py())
        table = self.convert(written)
        self._next[name] += 1
        if table.num_rows:
            self.crash.hit("source.poll.after")
        return table

    def positions(self) -> dict[str, int]:
        return dict(self._next)

    def exhausted(self) -> bool:
        return self._current() is None

    def close(self) -> None:
        if self._reader is not None:
            self._reader[1].close()
            self._reader = None


class RowGroupSource:
    """What every batch source does once its splits are assigned: hand out row groups under its
    snapshot's schema, and acknowledge nothing upstream (the checkpoint holding the positions is
    the commit)."""

    crash: CrashHook
    splits: RowGroupSplits
    _schema: pa.Schema

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        """The next whole row group; a batch source never waits, so `timeout` is unused."""
        return self.splits.poll(self._schema)

    def ack(self, positions: dict) -> None:
        self.crash.hit("source.ack.before")

    def exhausted(self) -> bool:
        return self.splits.exhausted()

    def close(self) -> None:
        self.splits.close()
