"""Schema evolution of a Delta table for the Delta sinks: added columns, and widened ones by a rewrite.

Added columns are a metadata change (`alter.add_columns`), and a file without a column reads it as
null, so a dropped column needs nothing. A widened column (int32 to int64) is another matter:
Delta's `typeWidening` table feature would keep the old files and read them as the wider type, but
delta-rs 1.x cannot enable it (its `TableFeatures` has no TypeWidening, and it rejects the
`delta.enableTypeWidening` property), and a narrow file under a wide schema without the feature is
not a valid table. So `widen` rewrites every data file under the wider types and replaces them all
in one overwrite commit, made on top of the version it read or not at all: a reader sees the table
before or after, never a mix, and no file committed in between escapes the rewrite.

The per-file staging both sinks and the rewrite share is here too: each data file written by the
sink itself (`stage_file`, a disk-fault check before every step), then added by one Delta commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, CommitProperties

from drivers.delta.table import check_readable_by_files, file_stats, relative_files
from drivers.parquet_files import write_durably
from drivers.sdk.contracts import CommitError
from drivers.sdk.diskfaults import check_disk

if TYPE_CHECKING:
    from drivers.sdk.diskfaults import DiskFaults

_INTEGERS = (pa.int8(), pa.int16(), pa.int32(), pa.int64())


def widens(narrow: pa.DataType, wide: pa.DataType) -> bool:
    """Whether `wide` holds every value of `narrow`: Delta's integer and float widenings."""
    if narrow in _INTEGERS and wide in _INTEGERS:
        return _INTEGERS.index(narrow) < _INTEGERS.index(wide)
    return narrow == pa.float32() and wide == pa.float64()


@dataclass(frozen=True)
class Evolution:
    """What writing rows of `incoming`'s schema into a table needs done to the table first."""

    schema: pa.Schema
    """The table's schema afterwards: its columns (some widened), then the new ones (nullable)."""
    added: tuple[pa.Field, ...]
    widened: tuple[str, ...]


def evolution(current: pa.Schema, incoming: pa.Schema) -> Evolution:
    """A column the rows have in a wider type is widened, one the table lacks is added; other type
    differences are left to `to_table_types`. Rows may lack a column only if it is nullable."""
    fields, widened = [], []
    for field in current:
        if field.name in incoming.names:
            wanted = incoming.field(field.name).type
            if wanted != field.type and widens(field.type, wanted):
                field = field.with_type(wanted)
                widened.append(field.name)
        elif not field.nullable:
            raise CommitError(f"the rows lack the table's non-nullable column {field.name!r}")
        fields.append(field)
    added = tuple(f.with_nullable(True) for f in incoming if f.name not in current.names)
    return Evolution(pa.schema([*fields, *added]), added, tuple(widened))


def to_table_types(table: pa.Table, schema: pa.Schema, *, keep_wider: bool = False) -> pa.Table:
    """`table`'s columns in `schema`'s types: a narrower one cast up, any other only if the cast is
    lossless (checked both ways), else CommitError; a silent lossy cast would corrupt records.
    Columns `schema` lacks stay; so do wider ones with `keep_wider` (the table is to be widened)."""
    for i, field in enumerate(table.schema):
        if field.name not in schema.names or field.type == schema.field(field.name).type:
            continue
        target = schema.field(field.name).type
        if keep_wider and widens(target, field.type):
            continue
        column = table.column(i)
        try:
            cast = column.cast(target, safe=True)
            lossless = widens(field.type, target) or cast.cast(field.type, safe=True).equals(column)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            lossless = False
        if not lossless:
            raise CommitError(f"column {field.name!r} is {field.type} but the table has {target}, "
                              "and the cast is not lossless")
        table = table.set_column(i, field.with_type(target), cast)
    return table


def stage_file(table: pa.Table, table_dir: Path, name: str, *, disk: DiskFaults | None, who: str) -> dict[str, Any]:
    """Write `table` as the data file `name` (hidden temporary, fsync, rename, directory fsync, each
    behind a disk-fault check) and return its `add` action as a dict, not yet in any commit."""
    path = write_durably(table, table_dir, name, disk=disk, who=who)
    stat = path.stat()
    return {"path": name, "size": stat.st_size, "modification_time": int(stat.st_mtime * 1000),
            "stats": file_stats(table)}


def add_actions(adds: list[dict[str, Any]]) -> list[AddAction]:
    return [AddAction(path=add["path"], size=add["size"], partition_values={},
                      modification_time=add["modification_time"], data_change=True, stats=add["stats"])
            for add in adds]


def remove_files(table_dir: Path, names: list[str]) -> None:
    """Delete data files no commit references (and their temporaries): an attempt that failed."""
    for name in names:
        (table_dir / name).unlink(missing_ok=True)
        (table_dir / f".{name}.inprogress").unlink(missing_ok=True)


def check_log_write(disk: DiskFaults | None, who: str, table_dir: Path) -> None:
    """The disk-fault check before delta-rs writes a commit into the log (out of reach itself)."""
    check_disk(disk, who, "write", table_dir / "_delta_log")


def add_columns(dt: DeltaTable, fields: tuple[pa.Field, ...]) -> None:
    """Add nullable columns in a Delta commit of their own (a metadata change, no data file)."""
    dt.alter.add_columns(list(Schema.from_arrow(pa.schema(list(fields))).fields))


def widen(dt: DeltaTable, table_dir: Path, schema: pa.Schema, name: Callable[[int], str], *,
          disk: DiskFaults | None, who: str) -> None:
    """Rewrite every data file of `dt`'s version with the columns it has in `schema`'s types (file
    k as `name(k)`), and replace the table's files and schema with them in one overwrite commit.

    The commit must land right on `dt`'s version (no retry over a newer commit): a file another
    writer added meanwhile would stay narrow under the wide schema, so CommitFailedError is raised
    instead and the caller starts again from a fresh snapshot. Files of a failed attempt are removed.
    """
    check_readable_by_files(dt)
    names: list[str] = []
    adds: list[dict[str, Any]] = []
    try:
        for k, rel in enumerate(relative_files(dt, table_dir)):
            written = pq.read_table(table_dir / rel)
            names.append(name(k))
            adds.append(stage_file(to_table_types(written, schema), table_dir, names[-1], disk=disk, who=who))
        check_log_write(disk, who, table_dir)
        dt.create_write_transaction(
            add_actions(adds), mode="overwrite", schema=schema,
            commit_properties=CommitProperties(max_commit_retries=0, custom_metadata={"chaos.operation": "widen"}))
    except (OSError, CommitFailedError):
        remove_files(table_dir, names)  # the overwrite did not land: nothing references them
        raise
