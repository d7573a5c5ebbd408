"""The harness's side of the Delta connectors, read with delta-rs (the `deltalake` package).

What a reader sees during the run is the latest version of the log (`DeltaSnapshotIds`). Which ids
each commit made visible comes from the log's commit files themselves (`_delta_log/<version>.json`,
the Delta protocol's own record of the table): a commit's `txn` action (app id
`<job>-w<worker>`, version = checkpoint) names its unit, with the `chaos.checkpoint_id` /
`chaos.worker` commit info as a fallback, and its `add` actions are its files. delta-rs has no API
for one commit's actions, hence the log itself; it assumes the log entries were not cleaned up.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from chaos.sides.base import OutputWatch, RunContext, empty_output, ids_of
from chaos.sides.tables import TableSourceSide
from chaos.sides.visibility import file_ids, unit_id, units_table
from drivers.sdk.connector import Settings

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from deltalake.transaction import AddAction

_APP_ID = re.compile(r".*-w(\d+)")
"""The app id the two-phase sink gives its `txn` actions: `<job id>-w<worker>`."""


def read_delta(uri: str) -> pa.Table:
    """A Delta table through delta-rs."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(uri):
        return empty_output()
    return delta_to_arrow(DeltaTable(uri), uri)


def delta_to_arrow(table: DeltaTable, uri: str, columns: list[str] | None = None) -> pa.Table:
    """A loaded `DeltaTable`'s version as Arrow. The explicit local filesystem avoids delta-rs #2184
    (the interpreter aborting at exit when pyarrow threads drive delta-rs's own filesystem)."""
    from pyarrow import fs as pafs

    return table.to_pyarrow_table(columns=columns, filesystem=pafs.SubTreeFileSystem(uri, pafs.LocalFileSystem()))


class DeltaSnapshotIds:
    """The ids in the latest version of a Delta table, through delta-rs.

    One `DeltaTable` is kept and brought forward with `update_incremental` (delta-rs reads only the
    new commits), and the ids are read again only when the version changed, so the probe's
    observations share one array while the table stands still.
    """

    def __init__(self, table_uri: str):
        self.table_uri = table_uri
        self._table: Any = None
        self._version: int | None = None
        self._ids: pa.Array = pa.array([], pa.int64())

    def __call__(self) -> pa.Array:
        from deltalake import DeltaTable

        if self._table is None:
            if not DeltaTable.is_deltatable(self.table_uri):
                return self._ids
            self._table = DeltaTable(self.table_uri)
        else:
            self._table.update_incremental()
        version = self._table.version()
        if version != self._version:
            self._ids = ids_of(delta_to_arrow(self._table, self.table_uri, ["id"]))
            self._version = version
        return self._ids


def _unit(actions: list[dict[str, Any]]) -> int | None:
    """A commit's unit: from its `txn` action, else from the commit info's chaos tags."""
    for action in actions:
        txn = action.get("txn")
        if txn is not None:
            match = _APP_ID.fullmatch(str(txn.get("appId", "")))
            if match is not None:
                return unit_id(txn["version"], match.group(1))
    for action in actions:
        info = action.get("commitInfo") or {}
        if "chaos.checkpoint_id" in info and "chaos.worker" in info:
            return unit_id(info["chaos.checkpoint_id"], info["chaos.worker"])
    return None


def _data_file(table_dir: Path, path: str) -> Path:
    """An `add` path: relative to the table and URL-encoded, or an absolute `file://` URI."""
    if "://" in path:
        return Path(unquote(urlparse(path).path))
    return table_dir / unquote(path)


def delta_committed_units(table_uri: str) -> pa.Table:
    """(checkpoint_id, id) for every unit committed to a Delta table, from the log's commit files, and
    when each landed (its `commitInfo.timestamp`). Commits that carry the same unit (a sink that splits
    a checkpoint) make up one unit together."""
    table_dir = Path(table_uri)
    units: list[tuple[int, pa.Array]] = []
    committed_at: dict[int, float] = {}
    for commit in sorted((table_dir / "_delta_log").glob("[0-9]" * 20 + ".json")):
        actions = [json.loads(line) for line in commit.read_text().splitlines() if line.strip()]
        unit = _unit(actions)
        if unit is None:
            continue  # table creation, a schema change of its own
        units += [(unit, file_ids(_data_file(table_dir, a["add"]["path"]))) for a in actions if "add" in a]
        stamp = next((a["commitInfo"].get("timestamp") for a in actions if "commitInfo" in a), None)
        if stamp is not None:
            committed_at.setdefault(unit, int(stamp) / 1000)  # a unit split over commits: its first
    return units_table(units, committed_at)


def _input_file(table_dir: Path, name: str, table: pa.Table) -> AddAction:
    """`table` written as the data file `name` (one row group), as the `add` action that commits it."""
    from deltalake.transaction import AddAction

    path = table_dir / name
    pq.write_table(table, path, row_group_size=max(table.num_rows, 1))
    stat = path.stat()
    return AddAction(path=name, size=stat.st_size, partition_values={}, modification_time=int(stat.st_mtime * 1000),
                     data_change=True, stats=json.dumps({"numRecords": table.num_rows}))


def write_delta_input(table_dir: Path, parts: list[pa.Table]) -> None:
    """The input table: one Delta commit per part, each part one data file named in stream order
    (`input-00000.parquet`, ...), so that the sorted file list the source shares out between its
    workers follows the stream and each worker meets files from both sides of a schema change.
    Files are written with pyarrow and committed with deltalake (`create_write_transaction`).

    A part with a wider type (the workload's int32 `score` becoming int64) first widens the table
    the way delta-rs allows, as it cannot enable Delta's type widening: one overwrite commit that
    replaces every file by a copy under the wider type (`input-00000-widened.parquet`), each with
    its own columns, so the source still meets files written before the change. New columns alone
    are added to the table's schema in a commit of their own."""
    from deltalake import DeltaTable, Schema

    table_dir.mkdir(parents=True, exist_ok=True)
    uri = str(table_dir)
    for n, part in enumerate(parts):
        dt = DeltaTable(uri) if DeltaTable.is_deltatable(uri) else DeltaTable.create(uri, part.schema)
        current = pa.schema(dt.schema().to_arrow())
        merged = pa.unify_schemas([current, part.schema], promote_options="permissive")
        if any(merged.field(f.name).type != f.type for f in current):
            copies = []
            for file in sorted(dt.file_uris()):
                rows = pq.read_table(file)
                copies.append(_input_file(table_dir, f"{Path(file).stem}-widened.parquet",
                                          rows.cast(pa.schema([merged.field(c) for c in rows.column_names]))))
            dt.create_write_transaction(copies, mode="overwrite", schema=merged)
        elif len(merged) > len(current):
            added = [merged.field(i) for i in range(len(current), len(merged))]
            dt.alter.add_columns(list(Schema.from_arrow(pa.schema(added)).fields))
        dt = DeltaTable(uri)
        dt.create_write_transaction([_input_file(table_dir, f"input-{n:05d}.parquet", part)], mode="append",
                                    schema=dt.schema())


class DeltaSourceSide(TableSourceSide):
    @property
    def table(self) -> str:
        return str(self.context.lake / "input-delta")

    def write_input(self, parts: list[pa.Table]) -> None:
        write_delta_input(Path(self.table), parts)

    def read_input(self) -> pa.Table:
        return read_delta(self.table)

    def settings(self) -> Settings:
        return {"table": self.table}


class DeltaSinkSide:
    watched = False
    polled = False

    def __init__(self, context: RunContext):
        self.table = str(context.lake / "output-delta")

    def settings(self) -> Settings:
        return {"table": self.table}

    def read(self) -> pa.Table:
        return read_delta(self.table)

    def watch(self) -> OutputWatch | None:
        return None


class DeltaTwoPhaseSinkSide(DeltaSinkSide):
    watched = True
    polled = False
    def watch(self) -> OutputWatch | None:
        return OutputWatch(DeltaSnapshotIds(self.table), lambda: delta_committed_units(self.table))
