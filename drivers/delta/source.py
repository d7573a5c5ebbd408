"""The Delta batch source: one pinned table version, read file by file and row group by row group."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from drivers.delta.table import arrow_schema, check_readable_by_files, conform, local_path, relative_files
from drivers.row_groups import RowGroupSource, RowGroupSplits
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CrashHook, Positions
from drivers.sdk.records import SCHEMA
from drivers.sdk.schema_watch import SchemaWatch


class DeltaBatchSource(RowGroupSource):
    """Reads the files of one table version; this worker owns `index % workers == worker` of the
    sorted file list. Positions: {"version": v, "files": {relative path: next row group}}."""

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "DeltaBatchSource":
        return cls(settings["table"], ctx.crash, SchemaWatch(ctx.history, ctx.worker, "source files"))

    def __init__(self, table_uri: str, crash: CrashHook, watch: SchemaWatch | None = None):
        self.table_uri = str(table_uri)
        self.table_dir = local_path(table_uri)
        self.crash = crash
        self._version: int | None = None
        self._schema: pa.Schema = SCHEMA
        self.splits = RowGroupSplits(crash, convert=lambda t: conform(t, self._schema), watch=watch)

    @property
    def version(self) -> int | None:
        """The table version this source reads (set by `open`)."""
        return self._version

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        """Pin the snapshot (the restored version, else the current one) and take this worker's files."""
        start = start or {}
        version = start.get("version")
        dt = DeltaTable(self.table_uri, version=None if version is None else int(version))
        check_readable_by_files(dt)
        self._version = dt.version()
        self._schema = arrow_schema(dt)
        self.splits.assign(relative_files(dt, self.table_dir), worker, workers, start.get("files") or {},
                           lambda name: pq.ParquetFile(self.table_dir / name))

    def snapshot_positions(self) -> Positions:
        return {"version": self._version, "files": self.splits.positions()}
