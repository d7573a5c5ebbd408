"""A downstream reader of the two-phase Parquet output, polling it while the run goes on.

It does what any reader of the directory would (pyarrow skips the hidden staging files) and keeps,
per poll, the set of record ids it could see. Visible files never change once renamed into place,
so each one is read once. After the run, the commit manifests say which ids each (checkpoint,
worker) commit made visible, and an observation holding part of one commit saw a partial commit.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

WORKERS_PER_CHECKPOINT = 1000
"""Unit ids are checkpoint_id * 1000 + worker: each worker's commit of a checkpoint is one unit."""


def _visible(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")))


class VisibilityProbe:
    def __init__(self, directory: Path, interval: float = 0.2):
        self.directory = directory
        self.interval = interval
        self.observations: list[dict[str, Any]] = []
        self._ids: dict[Path, pa.Array] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            files = _visible(self.directory)
            for path in files:
                if path not in self._ids:
                    try:
                        self._ids[path] = pq.read_table(path, columns=["id"])["id"].combine_chunks()
                    except (OSError, pa.ArrowInvalid):
                        continue  # vanished or unreadable this instant: the next poll sees it
            seen = [self._ids[p] for p in files if p in self._ids]
            self.observations.append({"ts": time.time(),
                                      "ids": pa.concat_arrays(seen) if seen else pa.array([], pa.int64())})


def committed_units(directory: Path) -> pa.Table:
    """(checkpoint_id, id) for every committed (checkpoint, worker) unit, from the commit manifests."""
    units, ids = [], []
    for manifest in sorted((directory / "_manifests").glob("*/*.json")):
        body = json.loads(manifest.read_text())
        unit = int(body["checkpoint_id"]) * WORKERS_PER_CHECKPOINT + int(body["worker"])
        for name in body["files"]:
            column = pq.read_table(directory / name, columns=["id"])["id"]
            units.extend([unit] * len(column))
            ids.extend(column.to_pylist())
    return pa.table({"checkpoint_id": pa.array(units, pa.int64()), "id": pa.array(ids, pa.int64())})
