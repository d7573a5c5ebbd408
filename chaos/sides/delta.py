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

from chaos.sides.base import OutputWatch, RunContext, empty_output, ids_of
from chaos.sides.tables import TableSourceSide
from chaos.sides.visibility import file_ids, unit_id, units_table
from drivers.sdk.connector import Settings

if TYPE_CHECKING:
    from deltalake import DeltaTable

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
    """(checkpoint_id, id) for every unit committed to a Delta table, from the log's commit files.
    Commits that carry the same unit (a sink that splits a checkpoint) make up one unit together."""
    table_dir = Path(table_uri)
    units: list[tuple[int, pa.Array]] = []
    for commit in sorted((table_dir / "_delta_log").glob("[0-9]" * 20 + ".json")):
        actions = [json.loads(line) for line in commit.read_text().splitlines() if line.strip()]
        unit = _unit(actions)
        if unit is None:
            continue  # table creation, a schema change of its own
        units += [(unit, file_ids(_data_file(table_dir, a["add"]["path"]))) for a in actions if "add" in a]
    return units_table(units)


class DeltaSourceSide(TableSourceSide):
    @property
    def table(self) -> str:
        return str(self.context.lake / "input-delta")

    def write_input(self, parts: list[pa.Table]) -> None:
        from deltalake import write_deltalake

        for part in parts:
            write_deltalake(self.table, part, mode="append")

    def read_input(self) -> pa.Table:
        return read_delta(self.table)

    def settings(self) -> Settings:
        return {"table": self.table}


class DeltaSinkSide:
    watched = False

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
    def watch(self) -> OutputWatch | None:
        return OutputWatch(DeltaSnapshotIds(self.table), lambda: delta_committed_units(self.table))
