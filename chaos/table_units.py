"""Which ids each commit made visible, from a lakehouse table's own metadata, after the run.

The atomic-visibility checker needs, for every unit that must become visible all at once, the ids
it carries. A unit is one worker's commit of one checkpoint, numbered as the Parquet manifests are
(`checkpoint_id * WORKERS_PER_CHECKPOINT + worker`). The sinks tag what they commit, and each
format records it in its own metadata, which is read here rather than trusted from the driver:

* Delta: every commit file of the log (`_delta_log/<version>.json`, the Delta protocol's own
  record of the table). A commit's `txn` action (app id `<job>-w<worker>`, version = checkpoint)
  names its unit, with the `chaos.checkpoint_id` / `chaos.worker` commit info as a fallback; its
  `add` actions are its files. delta-rs has no API for one commit's actions, hence the log itself.
  Commits that carry the same unit (a sink that splits a checkpoint) make up one unit together.
* Iceberg: the snapshots in the current snapshot's ancestry, through pyiceberg. The summary
  properties `chaos.checkpoint-id` and `chaos.worker` name the unit; the manifest entries the
  snapshot itself added are its files.
* Hudi: the completed commits of the timeline, through hudi-rs (`get_timeline`). The instant
  metadata's `chaos.checkpoint-id` and `chaos.worker` tags name the unit; its write stats list
  the base files.

Commits without these tags (table creation, a schema change of its own) carry no unit and are
left out. The ids of each file are read with pyarrow, `id` column only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from chaos.visibility_probe import unit_id

_APP_ID = re.compile(r".*-w(\d+)")
"""The app id `DeltaTwoPhaseSink` gives its `txn` actions: `<job id>-w<worker>`."""


def _file_ids(source: Any) -> pa.Array:
    return pq.read_table(source, columns=["id"]).column("id").combine_chunks().cast(pa.int64())


def _units_table(units: Iterable[tuple[int, pa.Array]]) -> pa.Table:
    """(checkpoint_id, id) rows, the shape `check_atomic_visibility` takes; unit ids go in `checkpoint_id`."""
    parts = list(units)
    return pa.table({
        "checkpoint_id": pa.concat_arrays([pa.repeat(pa.scalar(u, pa.int64()), len(a)) for u, a in parts]
                                          or [pa.array([], pa.int64())]),
        "id": pa.concat_arrays([a for _, a in parts] or [pa.array([], pa.int64())]),
    })


# -- Delta -----------------------------------------------------------------------------------------
def _delta_unit(actions: list[dict[str, Any]]) -> int | None:
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


def _delta_file(table_dir: Path, path: str) -> Path:
    """An `add` path: relative to the table and URL-encoded, or an absolute `file://` URI."""
    if "://" in path:
        return Path(unquote(urlparse(path).path))
    return table_dir / unquote(path)


def delta_committed_units(table_uri: str) -> pa.Table:
    """(checkpoint_id, id) for every unit committed to a Delta table, from the log's commit files."""
    table_dir = Path(table_uri)
    units: list[tuple[int, pa.Array]] = []
    for commit in sorted((table_dir / "_delta_log").glob("[0-9]" * 20 + ".json")):
        actions = [json.loads(line) for line in commit.read_text().splitlines() if line.strip()]
        unit = _delta_unit(actions)
        if unit is None:
            continue
        for action in actions:
            if "add" in action:
                units.append((unit, _file_ids(_delta_file(table_dir, action["add"]["path"]))))
    return _units_table(units)


# -- Iceberg ---------------------------------------------------------------------------------------
def iceberg_committed_units(catalog_uri: str, warehouse: Path, table_name: str) -> pa.Table:
    """(checkpoint_id, id) for every unit in the current snapshot's ancestry, through pyiceberg."""
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.manifest import ManifestEntryStatus
    from pyiceberg.table.snapshots import ancestors_of

    from drivers.iceberg import identifier, open_catalog

    catalog = open_catalog(catalog_uri, warehouse)
    try:
        try:
            table = catalog.load_table(identifier(table_name))
        except NoSuchTableError:
            return _units_table([])
        units: list[tuple[int, pa.Array]] = []
        for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
            props = snapshot.summary.additional_properties if snapshot.summary is not None else {}
            if "chaos.checkpoint-id" not in props or "chaos.worker" not in props:
                continue
            unit = unit_id(props["chaos.checkpoint-id"], props["chaos.worker"])
            for manifest in snapshot.manifests(table.io):
                if manifest.added_snapshot_id != snapshot.snapshot_id:
                    continue  # a manifest an earlier snapshot wrote: none of its entries are new here
                for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                    if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id == snapshot.snapshot_id:
                        with table.io.new_input(entry.data_file.file_path).open() as f:
                            units.append((unit, _file_ids(f)))
        return _units_table(units)
    finally:
        if hasattr(catalog, "engine"):
            catalog.engine.dispose()


# -- Hudi ------------------------------------------------------------------------------------------
def hudi_committed_units(table_path: Path) -> pa.Table:
    """(checkpoint_id, id) for every completed commit of a Hudi table's timeline, through hudi-rs."""
    import hudi

    if not (table_path / ".hoodie" / "hoodie.properties").exists():
        return _units_table([])
    timeline = hudi.HudiTableBuilder.from_base_uri(str(table_path)).build().get_timeline()
    units: list[tuple[int, pa.Array]] = []
    for instant in timeline.get_completed_commits():
        metadata = json.loads(timeline.get_instant_metadata_in_json(instant))
        extra = metadata.get("extraMetadata") or {}
        if "chaos.checkpoint-id" not in extra or "chaos.worker" not in extra:
            continue
        unit = unit_id(extra["chaos.checkpoint-id"], extra["chaos.worker"])
        for stats in (metadata.get("partitionToWriteStats") or {}).values():
            for stat in stats:  # a stat's path is relative to the table (partition path included)
                units.append((unit, _file_ids(table_path / stat["path"])))
    return _units_table(units)
