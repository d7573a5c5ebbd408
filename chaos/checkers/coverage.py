"""Which checkpoint committed each source record, from the source's offsets alone.

A Kafka sink's records carry no checkpoint id, but the Kafka source they come from has offsets, and
every persisted checkpoint records each worker's next offset per partition. A source record at offset
o of partition p belongs to the first persisted checkpoint whose position for p is past o: the one
whose commit decided it. That gives the Kafka sink the same (unit, id) table a table format's commit
records give the other sinks, for `premature-read` (seen before its decision) and `lost-write`
(committed, then seen by no reader).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def covering_units(truth: pa.Table, persisted: Iterable[dict[str, Any]]) -> pa.Table:
    """(checkpoint_id, id) for every source record a persisted checkpoint covers. `truth`: the source's
    (partition, offset, id); `persisted`: the `checkpoint.persisted` events in the order they happened, with their
    `positions` ({worker: {partition: next offset}})."""
    if not {"partition", "offset"} <= set(truth.column_names):  # a source without offsets: no record is placed
        return pa.table({"checkpoint_id": pa.array([], pa.int64()), "id": pa.array([], pa.int64())})
    checkpoints: list[int] = []
    reached: dict[int, list[int]] = {}
    for event in persisted:
        checkpoints.append(int(event["checkpoint_id"]))
        merged = {int(p): int(o) for positions in event.get("positions", {}).values() for p, o in positions.items()}
        for partition in set(reached) | set(merged):
            before = reached.setdefault(partition, [0] * (len(checkpoints) - 1))
            before.append(max(merged.get(partition, 0), before[-1] if before else 0))
    units, ids = [], []
    for partition, positions in sorted(reached.items()):
        rows = truth.filter(pc.equal(truth["partition"], partition))
        offsets = rows["offset"].to_numpy()
        first = np.searchsorted(np.asarray(positions), offsets, side="right")  # the first position past o
        covered = first < len(checkpoints)
        units.append(np.asarray(checkpoints, dtype=np.int64)[first[covered]])
        ids.append(rows["id"].to_numpy()[covered])
    return pa.table({"checkpoint_id": pa.array(np.concatenate(units) if units else [], pa.int64()),
                     "id": pa.array(np.concatenate(ids) if ids else [], pa.int64())})
