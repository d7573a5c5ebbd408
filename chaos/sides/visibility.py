"""A downstream reader polling a sink's committed output while the run goes on.

`VisibilityProbe` is one thread that, every `interval`, asks a sink side's "what is visible now"
function (`OutputWatch.visible`) for the set of record ids a reader could see, and keeps one
observation per poll. After the run, the units that must each become visible at once (a worker's
commit of a checkpoint, numbered by `unit_id`) come from the output's own commit records, read by
the sink side (`OutputWatch.units`). An observation holding part of one unit saw a partial commit
(`chaos.checkers.visibility.check_atomic_visibility`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from chaos.sides.background import BackgroundReader
from chaos.sides.base import VisibleIds

WORKERS_PER_CHECKPOINT = 1000
"""Unit ids are checkpoint_id * 1000 + worker: each worker's commit of a checkpoint is one unit."""

log = logging.getLogger("chaos.visibility")


def unit_id(checkpoint_id: int | str, worker: int | str) -> int:
    """The unit of one worker's commit of one checkpoint (as the checker's `checkpoint_id`)."""
    return int(checkpoint_id) * WORKERS_PER_CHECKPOINT + int(worker)


def file_ids(source: Any) -> pa.Array:
    """The ids of one Parquet data file (a path or an open file), `id` column only."""
    return pq.read_table(source, columns=["id"]).column("id").combine_chunks().cast(pa.int64())


def units_table(units: Iterable[tuple[int, pa.Array]], committed_at: Mapping[int, float] | None = None) -> pa.Table:
    """(checkpoint_id, id) rows, the shape `check_atomic_visibility` takes; unit ids go in `checkpoint_id`.
    `committed_at`: when each unit's commit landed, in wall-clock seconds, as the output's own commit
    record says (a Delta log entry's timestamp, an Iceberg snapshot's): a `committed_at` column then,
    null for a unit whose record says nothing."""
    parts = list(units)
    table = pa.table({
        "checkpoint_id": pa.concat_arrays([pa.repeat(pa.scalar(u, pa.int64()), len(a)) for u, a in parts]
                                          or [pa.array([], pa.int64())]),
        "id": pa.concat_arrays([a for _, a in parts] or [pa.array([], pa.int64())]),
    })
    if committed_at is None:
        return table
    times = pa.array([committed_at.get(u) for u, a in parts for _ in range(len(a))], pa.float64())
    return table.append_column("committed_at", times)


class VisibilityProbe(BackgroundReader):
    """Polls `visible` every `interval` seconds on a daemon thread until `stop`.

    `observations` holds `{"ts", "ids"}` per successful poll; `errors` counts the polls whose read
    failed (a failed poll is no observation: it would look like an empty table), and `last_error`
    says why the latest one failed.
    """

    def __init__(self, visible: VisibleIds, interval: float = 0.2):
        super().__init__("visibility-probe")
        self.visible = visible
        self.interval = interval
        self.observations: list[dict[str, Any]] = []
        self.errors = 0
        self.last_error = ""

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
