"""The harness's side of the Hudi connectors, read with hudi-rs (the `hudi` package).

What a reader sees is the table's latest snapshot; which ids each commit made visible comes from
the completed commits of the timeline (`get_timeline`): the instant metadata's
`chaos.checkpoint-id` and `chaos.worker` tags name the unit, and its write stats list the base files.

hudi-rs reads Hudi tables but cannot write them, and neither can any other Python package, so the
batch source's input table is written with the testbed's own Hudi writer (the two-phase sink,
which writes the format as Hudi's Java writer lays it out). Its output is still read back with
hudi-rs, so the ground truth is what an independent reader sees.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from chaos.sides.base import OutputWatch, RunContext, empty_output, ids_of
from chaos.sides.tables import TableSourceSide
from chaos.sides.visibility import file_ids, unit_id, units_table
from drivers.sdk.connector import Settings
from drivers.sdk.crashpoints import NoCrashes


def read_hudi(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A Hudi table's latest snapshot through hudi-rs, without the `_hoodie_*` meta columns."""
    import hudi

    if not (path / ".hoodie" / "hoodie.properties").exists():
        return empty_output()
    table = hudi.HudiTableBuilder.from_base_uri(str(path)).build()
    batches = table.read(hudi.HudiReadOptions(projection=columns)) if columns else table.read()
    if not batches:
        return empty_output()
    table = pa.Table.from_batches(batches)
    return table.drop_columns([c for c in table.column_names if c.startswith("_hoodie_")])


class HudiSnapshotIds:
    """The ids of a Hudi table's latest snapshot, through hudi-rs (`id` projected).

    hudi-rs decides what is committed (completed instants, and its rule for files older than the
    timeline), so the table is rebuilt and read in full every poll: there is no version number that
    would tell a stale read from a fresh one without doing hudi-rs's work again.
    """

    def __init__(self, table_path: Path):
        self.table_path = table_path

    def __call__(self) -> pa.Array:
        return ids_of(read_hudi(self.table_path, ["id"]))


def hudi_committed_units(table_path: Path) -> pa.Table:
    """(checkpoint_id, id) for every completed commit of a Hudi table's timeline, through hudi-rs, and
    when each completed (its `.commit` file's time: a version-6 timeline records no completion time)."""
    import hudi

    if not (table_path / ".hoodie" / "hoodie.properties").exists():
        return units_table([])
    timeline = hudi.HudiTableBuilder.from_base_uri(str(table_path)).build().get_timeline()
    units: list[tuple[int, pa.Array]] = []
    committed_at: dict[int, float] = {}
    for instant in timeline.get_completed_commits():
        metadata = json.loads(timeline.get_instant_metadata_in_json(instant))
        extra = metadata.get("extraMetadata") or {}
        if "chaos.checkpoint-id" not in extra or "chaos.worker" not in extra:
            continue
        unit = unit_id(extra["chaos.checkpoint-id"], extra["chaos.worker"])
        completed = table_path / ".hoodie" / f"{instant.timestamp}.commit"  # a v6 timeline's completion record
        if completed.exists():
            committed_at.setdefault(unit, completed.stat().st_mtime)
        for stats in (metadata.get("partitionToWriteStats") or {}).values():
            # a stat's path is relative to the table (partition path included)
            units += [(unit, file_ids(table_path / stat["path"])) for stat in stats]
    return units_table(units, committed_at)


class HudiSourceSide(TableSourceSide):
    splits_key = "splits"
    rows_per_unit = 1  # the Hudi source's positions are row offsets per file group
    @property
    def table(self) -> Path:
        return self.context.lake / "input-hudi"

    def write_input(self, parts: list[pa.Table]) -> None:
        from drivers.hudi.sink import HudiTwoPhaseSink

        writer = HudiTwoPhaseSink(self.table, "input", 0, NoCrashes())
        for checkpoint, part in enumerate(parts, start=1):
            writer.write(part)
            writer.commit(writer.prepare(checkpoint))

    def read_input(self) -> pa.Table:
        return read_hudi(self.table)

    def settings(self) -> Settings:
        return {"table": str(self.table)}


class HudiTwoPhaseSinkSide:
    watched = True
    polled = False

    def __init__(self, context: RunContext):
        self.table = context.lake / "output-hudi"

    def settings(self) -> Settings:
        return {"table": str(self.table)}

    def read(self) -> pa.Table:
        return read_hudi(self.table)

    def watch(self) -> OutputWatch | None:
        return OutputWatch(HudiSnapshotIds(self.table), lambda: hudi_committed_units(self.table))
