"""A local Delta table's files, log and schema: what the Delta source and sinks share."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import CommitProperties

from drivers.sdk.contracts import CommitError


def local_path(table_uri: str | os.PathLike[str]) -> Path:
    """The table directory of a local table URI (a plain path or `file://`); nothing else is supported."""
    uri = str(table_uri)
    if "://" in uri:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise ValueError(f"only local Delta tables are supported, not {uri!r}")
        return Path(unquote(parsed.path))
    return Path(uri)


def table_exists(uri: str) -> bool:
    return DeltaTable.is_deltatable(uri)


def load_table(uri: str, version: int | None = None) -> DeltaTable | None:
    """A fresh snapshot of the table, or None when there is no table yet."""
    if not table_exists(uri):
        return None
    try:
        return DeltaTable(uri, version=version)
    except TableNotFoundError:
        return None


def ensure_table(uri: str, schema: pa.Schema) -> DeltaTable:
    """The table, created empty with `schema` (version 0) if there is none yet. Of two workers
    racing to create it, one creation stands: the other must not land as version 1, where delta-rs
    would put it on a retry (a second metadata action, whose schema could undo the first's)."""
    dt = load_table(uri)
    if dt is not None:
        return dt
    try:
        DeltaTable.create(uri, schema, mode="ignore", commit_properties=CommitProperties(max_commit_retries=0))
    except Exception:
        if not table_exists(uri):
            raise
        # another worker created it at the same moment
    dt = load_table(uri)
    if dt is None:
        raise CommitError(f"could not create the Delta table at {uri}")
    return dt


def arrow_schema(dt: DeltaTable) -> pa.Schema:
    return pa.schema(dt.schema().to_arrow())


def relative_files(dt: DeltaTable, table_dir: Path) -> list[str]:
    """The snapshot's data files (from the Delta log) as paths relative to the table directory."""
    root = os.path.abspath(table_dir)
    return sorted(os.path.relpath(uri, root) for uri in dt.file_uris())


def check_readable_by_files(dt: DeltaTable) -> None:
    """Reading raw data files is only right when the files hold the rows as the table shows them."""
    protocol = dt.protocol()
    features = set(protocol.reader_features or [])
    unsupported = features & {"deletionVectors", "columnMapping"}
    if unsupported or protocol.min_reader_version == 2:
        raise NotImplementedError(f"Delta reader features not supported by this source: "
                                  f"{sorted(unsupported) or ['columnMapping (reader version 2)']}")
    if dt.metadata().partition_columns:
        raise NotImplementedError("partitioned Delta tables are not supported by this source")


def concat(tables: list[pa.Table]) -> pa.Table:
    """One table from a checkpoint's batches; schemas that changed mid-stream are unified."""
    return pa.concat_tables(tables, promote_options="permissive")


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` under `schema`: missing columns as nulls, types cast (a file may predate the schema)."""
    if table.schema.equals(schema):
        return table
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def file_stats(table: pa.Table) -> str:
    """Delta file statistics: numRecords (DeltaTable.count() sums it), null counts, and min/max of
    integer columns only (a truncated string max would be wrong, and float NaNs are a trap)."""
    null_count: dict[str, int] = {}
    min_values: dict[str, int] = {}
    max_values: dict[str, int] = {}
    for field in table.schema:
        if pa.types.is_nested(field.type):
            continue
        column = table.column(field.name)
        null_count[field.name] = column.null_count
        if pa.types.is_integer(field.type) and column.null_count < len(column):
            bounds = pc.min_max(column)
            min_values[field.name] = bounds["min"].as_py()
            max_values[field.name] = bounds["max"].as_py()
    return json.dumps({"numRecords": table.num_rows, "minValues": min_values,
                       "maxValues": max_values, "nullCount": null_count}, separators=(",", ":"))


def file_tag(job_id: str, worker: int) -> str:
    """The job and worker part of a staged file name, safe as a Delta path without URI encoding.

    A job id with other characters is sanitised and suffixed with a hash of the original, so two
    job ids never share a tag.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", job_id)
    if safe != job_id or not safe:
        safe = f"{safe}-{hashlib.sha256(job_id.encode()).hexdigest()[:8]}"
    return f"{safe}-w{worker}"
