"""The harness's side of the Iceberg connectors, read with pyiceberg through a catalog of its own.

Iceberg tables sit in a warehouse directory with a SQL catalog: embedded SQLite, or, for the
distributed-durable profile, the environment's PostgreSQL. Workers reach that catalog through the
`worker-catalog` link (so it can be partitioned); the harness opens its own catalog over the
direct port, never faulted, and never through the driver's code. The catalog's name and namespace
are the testbed's convention, which the sinks follow.

What a reader sees during the run is the current snapshot of `main` (`IcebergSnapshotIds`). Which
ids each commit made visible comes from the snapshots in the current snapshot's ancestry: their
summary properties `chaos.checkpoint-id` and `chaos.worker` name the unit (for the Kafka Connect
sink, `kafka.connect.commit-id` marks a snapshot that is one unit), and the manifest entries a
snapshot itself added are its files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from chaos.sides.base import OutputWatch, RunContext, empty_output, ids_of
from chaos.sides.tables import TableSourceSide
from chaos.sides.visibility import file_ids, unit_id, units_table
from drivers.sdk.connector import Settings

CATALOG_NAME = "chaos"
NAMESPACE = "chaos"


def catalog_uri(context: RunContext, *, harness: bool) -> str:
    """The catalog's address: "" for embedded SQLite in the warehouse, or the environment's
    PostgreSQL, over the `worker-catalog` link for the workers and directly for the harness."""
    if context.experiment.pipeline.profile != "distributed-durable":
        return ""
    postgres = context.env.state.postgres
    port = postgres if harness else context.env.create_link("worker-catalog", postgres).port
    return f"postgresql://chaos@127.0.0.1:{port}/chaos"


def open_catalog(uri: str, warehouse: Path) -> Any:
    """The harness's own pyiceberg SqlCatalog on the same database and warehouse as the sinks'."""
    from pyiceberg.catalog.sql import SqlCatalog

    warehouse = Path(warehouse).resolve()
    warehouse.mkdir(parents=True, exist_ok=True)
    if uri:
        properties = {"uri": uri.replace("postgresql://", "postgresql+psycopg://", 1), "pool_pre_ping": "true"}
    else:
        properties = {"uri": f"sqlite:///{warehouse / 'catalog.db'}"}
    catalog = SqlCatalog(CATALOG_NAME, warehouse=warehouse.as_uri(), **properties)
    catalog.create_namespace_if_not_exists(NAMESPACE)
    return catalog


def close_catalog(catalog: Any) -> None:
    if hasattr(catalog, "engine"):
        catalog.engine.dispose()


def identifier(table_name: str) -> str:
    return f"{NAMESPACE}.{table_name}"


def read_iceberg(uri: str, warehouse: Path, table_name: str) -> pa.Table:
    """An Iceberg table's current snapshot through pyiceberg."""
    from pyiceberg.exceptions import NoSuchTableError

    catalog = open_catalog(uri, warehouse)
    try:
        return catalog.load_table(identifier(table_name)).scan().to_arrow()
    except NoSuchTableError:
        return empty_output()
    finally:
        close_catalog(catalog)


class IcebergSnapshotIds:
    """The ids in the current snapshot of an Iceberg table, through pyiceberg and the catalog.

    The catalog is opened on the first poll (and again after a failed open); `close` releases its
    connection pool, whose connections are checked before use (a catalog restarted by a fault).
    """

    def __init__(self, uri: str, warehouse: Path, table_name: str):
        self.uri = uri
        self.warehouse = warehouse
        self.table_name = table_name
        self._catalog: Any = None
        self._snapshot: int | None = None
        self._ids: pa.Array = pa.array([], pa.int64())

    def __call__(self) -> pa.Array:
        from pyiceberg.exceptions import NoSuchTableError

        if self._catalog is None:
            self._catalog = open_catalog(self.uri, self.warehouse)
        try:
            table = self._catalog.load_table(identifier(self.table_name))
        except NoSuchTableError:
            return pa.array([], pa.int64())
        snapshot = table.current_snapshot()
        if snapshot is None:
            return pa.array([], pa.int64())
        if snapshot.snapshot_id != self._snapshot:
            self._ids = ids_of(table.scan(selected_fields=("id",), snapshot_id=snapshot.snapshot_id).to_arrow())
            self._snapshot = snapshot.snapshot_id
        return self._ids

    def close(self) -> None:
        if self._catalog is not None:
            close_catalog(self._catalog)
        self._catalog = None


def iceberg_committed_units(uri: str, warehouse: Path, table_name: str) -> pa.Table:
    """(checkpoint_id, id) for every unit in the current snapshot's ancestry, through pyiceberg, and when
    each landed (its snapshot's `timestamp-ms`)."""
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.manifest import ManifestEntryStatus
    from pyiceberg.table.snapshots import ancestors_of

    catalog = open_catalog(uri, warehouse)
    try:
        try:
            table = catalog.load_table(identifier(table_name))
        except NoSuchTableError:
            return units_table([])
        units: list[tuple[int, pa.Array]] = []
        committed_at: dict[int, float] = {}
        for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
            props = snapshot.summary.additional_properties if snapshot.summary is not None else {}
            if "chaos.checkpoint-id" in props and "chaos.worker" in props:
                unit = unit_id(props["chaos.checkpoint-id"], props["chaos.worker"])
            elif "kafka.connect.commit-id" in props:  # the Kafka Connect sink: one snapshot per commit
                unit = unit_id(snapshot.sequence_number, 0)
            else:
                continue  # table creation, a schema change of its own
            committed_at[unit] = min(committed_at.get(unit, float("inf")), snapshot.timestamp_ms / 1000)
            for manifest in snapshot.manifests(table.io):
                if manifest.added_snapshot_id != snapshot.snapshot_id:
                    continue  # a manifest an earlier snapshot wrote: none of its entries are new here
                for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                    if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id == snapshot.snapshot_id:
                        with table.io.new_input(entry.data_file.file_path).open() as f:
                            units.append((unit, file_ids(f)))
        return units_table(units, committed_at)
    finally:
        close_catalog(catalog)


class _IcebergTable:
    """One of the run's Iceberg tables: named per run, since the PostgreSQL catalog outlives runs."""

    def __init__(self, context: RunContext, role: str):
        self.context = context
        self.warehouse = context.lake / "iceberg"
        self.table_name = re.sub(r"[^a-z0-9]+", "_", f"{role}_{context.run_id}".lower())

    def worker_settings(self) -> Settings:
        return {"catalog_uri": catalog_uri(self.context, harness=False), "warehouse": str(self.warehouse),
                "table_name": self.table_name}

    def read(self) -> pa.Table:
        return read_iceberg(catalog_uri(self.context, harness=True), self.warehouse, self.table_name)


class IcebergSourceSide(TableSourceSide):
    def __init__(self, context: RunContext):
        super().__init__(context)
        self.table = _IcebergTable(context, "input")

    def write_input(self, parts: list[pa.Table]) -> None:
        """A part under a new schema version evolves the table in its own commit."""
        from pyiceberg.exceptions import NoSuchTableError

        catalog = open_catalog(catalog_uri(self.context, harness=True), self.table.warehouse)
        try:
            try:
                table = catalog.load_table(identifier(self.table.table_name))
            except NoSuchTableError:
                table = catalog.create_table(identifier(self.table.table_name), schema=parts[0].schema)
            for part in parts:
                with table.transaction() as tx:
                    tx.update_schema().union_by_name(part.schema).commit()
                    tx.append(part)
        finally:
            close_catalog(catalog)

    def read_input(self) -> pa.Table:
        return self.table.read()

    def settings(self) -> Settings:
        return self.table.worker_settings()


class IcebergSinkSide:
    watched = False
    polled = False

    def __init__(self, context: RunContext):
        self.context = context
        self.table = _IcebergTable(context, "output")

    def settings(self) -> Settings:
        return self.table.worker_settings()

    def read(self) -> pa.Table:
        return self.table.read()

    def watch(self) -> OutputWatch | None:
        return None


class IcebergTwoPhaseSinkSide(IcebergSinkSide):
    watched = True
    polled = False
    def watch(self) -> OutputWatch | None:
        where = (catalog_uri(self.context, harness=True), self.table.warehouse, self.table.table_name)
        probe = IcebergSnapshotIds(*where)
        return OutputWatch(probe, lambda: iceberg_committed_units(*where), probe.close)
