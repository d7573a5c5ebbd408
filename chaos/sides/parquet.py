"""The harness's side of the Parquet batch source and the Parquet sinks, read with pyarrow.

The batch source's input files are written before the job starts and read back as the ground
truth. An output directory is read the way any pyarrow reader reads it: hidden (`.`/`_`) staging
files are skipped. The two-phase sink is also watched while the run goes on: its commits are the
manifests it writes, one per (checkpoint, worker) unit.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from chaos.sides.base import OutputWatch, RunContext, empty_output
from chaos.sides.visibility import file_ids, unit_id, units_table
from chaos.workload.producer import WorkloadOutcome, WorkloadProgress
from drivers.sdk import records
from drivers.sdk.connector import Settings

ROW_GROUP = 100


def visible_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")))


def read_parquet_output(directory: Path) -> pa.Table:
    """Every committed row of a Parquet output directory (empty if nothing was committed)."""
    files = visible_files(directory)
    if not files:
        return empty_output()
    # Files written before and after a schema change differ: read them all under the unified schema.
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    return ds.dataset([str(f) for f in files], schema=schema, format="parquet").to_table()


class ParquetBatchSourceSide:
    """Input files written before the job, several per worker, each of several row groups (the
    splits the source hands out)."""

    live_feed = False
    partitioned = False
    splits_key: str | None = None
    """Where a worker's positions keep a count per split (None: the positions are that mapping)."""
    rows_per_unit = ROW_GROUP
    """Records per unit of those counts (a row group here)."""

    def __init__(self, context: RunContext):
        self.context = context
        self.input_dir = context.run_dir / "input"

    def prepare(self) -> None:
        experiment = self.context.experiment
        self.input_dir.mkdir(parents=True, exist_ok=True)  # written before any worker starts
        files = max(experiment.pipeline.workers * 2, 1)
        n = 0
        for table in records.versioned_tables(experiment.workload, experiment.seed):  # one schema per file
            per_file = -(-table.num_rows // files)
            for i in range(files):
                part = table.slice(i * per_file, per_file)
                if part.num_rows:
                    pq.write_table(part, self.input_dir / f"input-{n:04d}.parquet", row_group_size=ROW_GROUP)
                    n += 1

    def settings(self) -> Settings:
        return {"input_dir": str(self.input_dir)}

    def drive(self, progress: WorkloadProgress, stop: threading.Event) -> WorkloadOutcome | None:
        progress.produced = progress.acked = self.context.experiment.workload.records
        return None

    def caught_up(self, status: dict[str, Any]) -> bool:
        return bool(status.get("exhausted"))

    def committed(self, status: dict[str, Any] | None) -> int:
        """The records the last committed checkpoint covers, from its positions (a row group counts
        whole), for the progress display."""
        total = self.context.experiment.workload.records
        if not status:
            return 0
        if status.get("exhausted"):
            return total
        units = 0
        for positions in status["positions"].values():
            splits = positions.get(self.splits_key, {}) if self.splits_key else positions
            units += sum(int(n) for n in splits.values() if isinstance(n, int))
        return min(total, units * self.rows_per_unit)

    def truth(self) -> pa.Table:
        files = sorted(self.input_dir.glob("input-*.parquet"))
        return pa.concat_tables([pq.read_table(f, columns=["id", "key", "checksum"]) for f in files])

    def max_rate(self) -> float | None:
        """Files would be read in a blink; the workload's rate spreads them over checkpoints and faults."""
        return self.context.experiment.workload.rate / self.context.experiment.pipeline.workers


class ParquetSinkSide:
    watched = False
    polled = False
    local_output = True

    def __init__(self, context: RunContext):
        self.output = context.run_dir / "output"

    def settings(self) -> Settings:
        return {"output_dir": str(self.output)}

    def read(self) -> pa.Table:
        return read_parquet_output(self.output)

    def watch(self) -> OutputWatch | None:
        return None


class ParquetVisibleIds:
    """The ids in a Parquet output directory, as any pyarrow reader sees it (hidden staging files
    skipped). Visible files never change once renamed into place, so each one is read once."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._ids: dict[Path, pa.Array] = {}

    def __call__(self) -> pa.Array:
        files = visible_files(self.directory)
        for path in files:
            if path not in self._ids:
                try:
                    self._ids[path] = file_ids(path)
                except (OSError, pa.ArrowInvalid):
                    continue  # vanished or unreadable this instant: the next poll sees it
        seen = [self._ids[p] for p in files if p in self._ids]
        return pa.concat_arrays(seen) if seen else pa.array([], pa.int64())


def committed_units(directory: Path) -> pa.Table:
    """(checkpoint_id, id) for every committed (checkpoint, worker) unit, from the commit manifests, and
    when each was committed (its manifest's time)."""
    units = []
    committed_at: dict[int, float] = {}
    for manifest in sorted((directory / "_manifests").glob("*/*.json")):
        body = json.loads(manifest.read_text())
        unit = unit_id(body["checkpoint_id"], body["worker"])
        units += [(unit, file_ids(directory / name)) for name in body["files"]]
        committed_at[unit] = manifest.stat().st_mtime  # written last, by the commit
    return units_table(units, committed_at)


class TwoPhaseParquetSinkSide(ParquetSinkSide):
    watched = True
    polled = False
    def watch(self) -> OutputWatch | None:
        return OutputWatch(ParquetVisibleIds(self.output), lambda: committed_units(self.output))
