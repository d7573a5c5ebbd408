"""A downstream reader polling a sink's committed output while the run goes on.

`VisibilityProbe` is one thread that, every `interval`, asks a pluggable "what is visible now"
function for the set of record ids a reader could see, and keeps one observation per poll. The
function is the only part that knows the format: `ParquetVisibleIds` here for the two-phase Parquet
directory, and the lakehouse readers in `chaos/table_snapshots.py`. After the run, the units that
must each become visible at once (a worker's commit of a checkpoint, numbered by `unit_id`) come
from the output's own commit records: the Parquet manifests here (`committed_units`), the Delta log,
the Iceberg snapshots or the Hudi timeline in `chaos/table_units.py`. An observation holding part
of one unit saw a partial commit (`chaos.checkers.visibility.check_atomic_visibility`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

WORKERS_PER_CHECKPOINT = 1000
"""Unit ids are checkpoint_id * 1000 + worker: each worker's commit of a checkpoint is one unit."""

VisibleIds = Callable[[], pa.Array]
"""Reads the ids a reader sees right now (empty while nothing is committed); may raise on a
transient read error, which the probe counts and retries at the next poll."""

log = logging.getLogger("chaos.visibility")


def unit_id(checkpoint_id: int | str, worker: int | str) -> int:
    """The unit of one worker's commit of one checkpoint (as the checker's `checkpoint_id`)."""
    return int(checkpoint_id) * WORKERS_PER_CHECKPOINT + int(worker)


class VisibilityProbe:
    """Polls `visible` every `interval` seconds on a daemon thread until `stop`.

    `observations` holds `{"ts", "ids"}` per successful poll; `errors` counts the polls whose read
    failed (a failed poll is no observation: it would look like an empty table), and `last_error`
    says why the latest one failed.
    """

    def __init__(self, visible: VisibleIds, interval: float = 0.2):
        self.visible = visible
        self.interval = interval
        self.observations: list[dict[str, Any]] = []
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def poll(self) -> None:
        """One read; the thread calls it every `interval`."""
        try:
            ids = self.visible()
        except Exception as e:  # noqa: BLE001 - any reader error is transient to a poller: retry
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            log.debug("visibility poll failed: %s", self.last_error)
            return
        self.observations.append({"ts": time.time(), "ids": ids})

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()


# -- two-phase Parquet ---------------------------------------------------------------------------
def _visible(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")))


class ParquetVisibleIds:
    """The ids in a Parquet output directory, as any pyarrow reader sees it (hidden staging files
    skipped). Visible files never change once renamed into place, so each one is read once."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._ids: dict[Path, pa.Array] = {}

    def __call__(self) -> pa.Array:
        files = _visible(self.directory)
        for path in files:
            if path not in self._ids:
                try:
                    self._ids[path] = pq.read_table(path, columns=["id"])["id"].combine_chunks()
                except (OSError, pa.ArrowInvalid):
                    continue  # vanished or unreadable this instant: the next poll sees it
        seen = [self._ids[p] for p in files if p in self._ids]
        return pa.concat_arrays(seen) if seen else pa.array([], pa.int64())


def committed_units(directory: Path) -> pa.Table:
    """(checkpoint_id, id) for every committed (checkpoint, worker) unit, from the commit manifests."""
    units, ids = [], []
    for manifest in sorted((directory / "_manifests").glob("*/*.json")):
        body = json.loads(manifest.read_text())
        unit = unit_id(body["checkpoint_id"], body["worker"])
        for name in body["files"]:
            column = pq.read_table(directory / name, columns=["id"])["id"]
            units.extend([unit] * len(column))
            ids.extend(column.to_pylist())
    return pa.table({"checkpoint_id": pa.array(units, pa.int64()), "id": pa.array(ids, pa.int64())})
