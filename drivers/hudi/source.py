"""The Hudi batch source: one completed instant's base files, read row group by row group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from drivers.hudi.layout import META_COLUMNS
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CrashHook, Positions
from drivers.sdk.records import SCHEMA
from drivers.sdk.schema_watch import SchemaWatch


class HudiBatchSource:
    """A bounded, replayable source over one snapshot of a Hudi table, read through hudi-rs.

    `open` pins the latest completed instant (or the one in `start`) and lists that snapshot's
    file slices through hudi-rs, in commit order; this worker takes the slices whose index is
    `worker` modulo `workers`. A position is the number of rows already handed out of each owned
    slice. A copy-on-write file slice at a fixed instant is immutable, so re-reading from a
    position yields the same rows: `ack` has nothing to commit upstream.
    """

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "HudiBatchSource":
        return cls(Path(settings["table"]), ctx.crash,
                   SchemaWatch(ctx.history, ctx.worker, "source files", ignore=frozenset(META_COLUMNS)))

    def __init__(self, table_path: Path, crash: CrashHook, watch: SchemaWatch | None = None):
        self.table_path = Path(table_path)
        self.crash = crash
        self.watch = watch
        """Shown each base file's schema as written: hudi-rs reads every slice under the table's."""
        self.instant: str | None = None
        self._slices: list[Any] = []
        self._offsets: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._loaded: tuple[str, pa.Table] | None = None
        self._reader: Any = None

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        import hudi

        if not 0 <= worker < workers:
            raise ValueError(f"worker {worker} is not in 0..{workers - 1}")
        self.close()
        table = hudi.HudiTableBuilder.from_base_uri(str(self.table_path)).build()
        completed = [i.timestamp for i in table.get_timeline().get_completed_commits()]
        if start and "instant" in start:
            self.instant = start["instant"]  # a restore reads the very snapshot it started on
        else:
            self.instant = max(completed) if completed else None
        start = start or {}
        self._slices, self._offsets, self._counts = [], {}, {}
        if self.instant is None:
            return
        if self.instant not in completed:
            raise ValueError(f"instant {self.instant} is not a completed commit of {self.table_path}")
        options = hudi.HudiReadOptions().with_as_of_timestamp(self.instant)
        # In commit order, as the table was written: a worker's share then spans the whole stream (and
        # any schema change in it), whatever random ids the writer gave the file groups.
        slices = sorted(table.get_file_slices(options),
                        key=lambda s: (s.creation_instant_time, s.partition_path, s.file_id))
        self._slices = [s for i, s in enumerate(slices) if i % workers == worker]
        self._reader = table.create_file_group_reader_with_options(options)
        offsets = start.get("splits", {})
        for s in self._slices:
            position = int(offsets.get(s.file_id, 0))
            if position < 0:
                raise ValueError(f"negative position {position} for file group {s.file_id}")
            self._offsets[s.file_id] = position

    def _rows(self, file_slice: Any) -> pa.Table:
        if self._loaded is None or self._loaded[0] != file_slice.file_id:
            batch = self._reader.read_file_slice(file_slice)
            data = pa.Table.from_batches([batch]).drop_columns(
                [c for c in batch.schema.names if c in META_COLUMNS])
            if self.watch is not None and data.num_rows:
                written = pq.read_schema(self.table_path / file_slice.base_file_relative_path())
                self.watch.see(written, data["id"][0].as_py())
            self._loaded = (file_slice.file_id, data)
        return self._loaded[1]

    def _current(self) -> Any | None:
        """The first owned slice (in file-id order) with rows left; each slice is read at most once
        per pass, and a finished one is remembered by its row count."""
        for s in self._slices:
            count = self._counts.get(s.file_id)
            if count is None:
                count = self._counts[s.file_id] = self._rows(s).num_rows
            if self._offsets[s.file_id] < count:
                return s
        return None

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        """Up to `max_records` rows of the first owned slice with rows left; never waits."""
        file_slice = self._current()
        if file_slice is None:
            return SCHEMA.empty_table()
        rows = self._rows(file_slice)
        offset = self._offsets[file_slice.file_id]
        batch = rows.slice(offset, max(1, max_records))
        self._offsets[file_slice.file_id] = offset + batch.num_rows
        self.crash.hit("source.poll.after")
        return batch

    def snapshot_positions(self) -> Positions:
        return {"instant": self.instant, "splits": dict(self._offsets)}

    def ack(self, positions: Positions) -> None:
        """Nothing to commit upstream: the checkpoint that holds `positions` is the commit."""
        self.crash.hit("source.ack.before")

    def exhausted(self) -> bool:
        return self._current() is None

    def close(self) -> None:
        self._loaded = None
        self._reader = None
