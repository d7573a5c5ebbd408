"""The Iceberg batch source: one snapshot, read file by file and row group by row group."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import schema_to_pyarrow

from drivers.iceberg.catalog import filesystem, identifier, open_catalog, plain_types
from drivers.row_groups import RowGroupSource, RowGroupSplits
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CrashHook, Positions
from drivers.sdk.records import SCHEMA
from drivers.sdk.schema_watch import SchemaWatch


class IcebergBatchSource(RowGroupSource):
    """A bounded, replayable source over one snapshot of an Iceberg table, one row group per poll.

    `open` pins the table's current snapshot (a restore re-reads the snapshot recorded in the
    positions, so later commits to the table never shift what a replay hands out). The snapshot's
    data files come from Iceberg metadata (`plan_files`) and are split across workers by index in
    the sorted list; a position is the next row group of each owned file. Files are read with
    pyarrow, so this reader does not apply delete files (it refuses a snapshot that has any), and
    it projects columns by name onto the snapshot's schema (missing columns read as null; renamed
    columns are not followed, since that needs field ids).
    """

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "IcebergBatchSource":
        return cls(settings["catalog_uri"], Path(settings["warehouse"]), settings["table_name"], ctx.crash,
                   SchemaWatch(ctx.history, ctx.worker, "source files"))

    def __init__(self, catalog_uri: str, warehouse: Path, table_name: str, crash: CrashHook,
                 watch: SchemaWatch | None = None):
        self.catalog_uri = catalog_uri
        self.warehouse = Path(warehouse)
        self.table_name = table_name
        self.crash = crash
        self.snapshot_id: int | None = None
        self._schema: pa.Schema = SCHEMA
        self.splits = RowGroupSplits(crash, convert=self._project, watch=watch)

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        start = start or {}
        catalog = open_catalog(self.catalog_uri, self.warehouse)
        try:
            table = catalog.load_table(identifier(self.table_name))
            if "snapshot_id" in start:
                snapshot_id = start["snapshot_id"]
                if snapshot_id is not None and table.snapshot_by_id(int(snapshot_id)) is None:
                    raise ValueError(f"snapshot {snapshot_id} of {self.table_name} no longer exists "
                                     "(expired?): the source cannot replay it")
            else:
                current = table.current_snapshot()
                snapshot_id = current.snapshot_id if current is not None else None
            self.snapshot_id = None if snapshot_id is None else int(snapshot_id)
            if self.snapshot_id is None:
                every: list[str] = []
            else:
                snapshot = table.snapshot_by_id(self.snapshot_id)
                assert snapshot is not None
                schema = table.schemas().get(snapshot.schema_id, table.schema()) \
                    if snapshot.schema_id is not None else table.schema()
                self._schema = plain_types(schema_to_pyarrow(schema, include_field_ids=False))
                tasks = list(table.scan(snapshot_id=self.snapshot_id).plan_files())
                if any(task.delete_files for task in tasks):
                    raise NotImplementedError(f"snapshot {self.snapshot_id} of {self.table_name} has delete "
                                              "files; this row-group reader only reads append-only tables")
                every = sorted(task.file.file_path for task in tasks)
        finally:
            catalog.close()
        def open_file(path: str) -> pq.ParquetFile:
            fs, local = filesystem(path)
            return pq.ParquetFile(fs.open_input_file(local))

        self.splits.assign(every, worker, workers, start.get("files", {}), open_file)

    def _project(self, table: pa.Table) -> pa.Table:
        columns = []
        for field in self._schema:
            if field.name in table.column_names:
                columns.append(table.column(field.name).cast(field.type))
            else:
                columns.append(pa.nulls(table.num_rows, field.type))
        return pa.Table.from_arrays(columns, schema=self._schema)

    def snapshot_positions(self) -> Positions:
        return {"snapshot_id": self.snapshot_id, "files": self.splits.positions()}
