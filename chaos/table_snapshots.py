"""What a downstream reader of a lakehouse table can see right now: the ids of its current snapshot.

The atomic-visibility probe (`chaos/visibility_probe.py`) calls one of these every poll while the
pipeline runs. Each reads the `id` column of the table's *current* snapshot through the format's
official reader, as any consumer of the table would, never through the sink's code:

* Delta with delta-rs (`deltalake`): the latest version of the log;
* Iceberg with pyiceberg: the current snapshot of `main`, loaded from the catalog over the harness's
  direct connection (never the faulted `worker-catalog` link);
* Hudi with hudi-rs (the `hudi` package): the latest completed instants.

A table that does not exist yet reads as empty (the first commit creates it). Any other read error
is raised to the probe, which counts it and tries again at the next poll: a reader racing a commit,
a catalog restarted by a fault, or a file listed a moment before a cleanup are transient.

Delta and Iceberg remember the version (snapshot id) they last read and hand back the same array
while it has not changed: the read is skipped, and the probe's observations share one array
instead of holding a copy per poll.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from chaos.readers import delta_to_arrow, read_hudi

EMPTY = pa.array([], pa.int64())


def _ids(table: pa.Table) -> pa.Array:
    return table.column("id").combine_chunks().cast(pa.int64()) if table.num_rows else EMPTY


class DeltaSnapshotIds:
    """The ids in the latest version of a Delta table, through delta-rs.

    One `DeltaTable` is kept and brought forward with `update_incremental` (delta-rs reads only the
    new commits), so a poll costs a log listing until a new version lands.
    """

    def __init__(self, table_uri: str):
        self.table_uri = table_uri
        self._table: Any = None
        self._version: int | None = None
        self._ids: pa.Array = EMPTY

    def __call__(self) -> pa.Array:
        from deltalake import DeltaTable

        if self._table is None:
            if not DeltaTable.is_deltatable(self.table_uri):
                return EMPTY
            self._table = DeltaTable(self.table_uri)
        else:
            self._table.update_incremental()
        version = self._table.version()
        if version != self._version:
            self._ids = _ids(delta_to_arrow(self._table, self.table_uri, ["id"]))
            self._version = version
        return self._ids


class IcebergSnapshotIds:
    """The ids in the current snapshot of an Iceberg table, through pyiceberg and the catalog.

    The catalog is opened on the first poll (and again after a failed open); `close` releases its
    connection pool. A SQL catalog on PostgreSQL replaces a connection broken by a fault itself
    (`pool_pre_ping`, set by `drivers.iceberg.open_catalog`).
    """

    def __init__(self, catalog_uri: str, warehouse: Path, table_name: str):
        self.catalog_uri = catalog_uri
        self.warehouse = warehouse
        self.table_name = table_name
        self._catalog: Any = None
        self._snapshot: int | None = None
        self._ids: pa.Array = EMPTY

    def __call__(self) -> pa.Array:
        from pyiceberg.exceptions import NoSuchTableError

        from drivers.iceberg import identifier, open_catalog

        if self._catalog is None:
            self._catalog = open_catalog(self.catalog_uri, self.warehouse)
        try:
            table = self._catalog.load_table(identifier(self.table_name))
        except NoSuchTableError:
            return EMPTY
        snapshot = table.current_snapshot()
        if snapshot is None:
            return EMPTY
        if snapshot.snapshot_id != self._snapshot:
            self._ids = _ids(table.scan(selected_fields=("id",), snapshot_id=snapshot.snapshot_id).to_arrow())
            self._snapshot = snapshot.snapshot_id
        return self._ids

    def close(self) -> None:
        if self._catalog is not None and hasattr(self._catalog, "engine"):
            self._catalog.engine.dispose()
        self._catalog = None


class HudiSnapshotIds:
    """The ids of a Hudi table's latest snapshot, through hudi-rs (`id` projected).

    hudi-rs decides what is committed (completed instants, and its rule for files older than the
    timeline), so the table is rebuilt and read in full every poll: there is no version number that
    would tell a stale read from a fresh one without doing hudi-rs's work again.
    """

    def __init__(self, table_path: Path):
        self.table_path = table_path

    def __call__(self) -> pa.Array:
        return _ids(read_hudi(self.table_path, ["id"]))
