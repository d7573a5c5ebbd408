"""Record ids as numpy arrays indexed by id, for the checkers' fast paths.

Generated record ids are dense: the sequence numbers 0..N-1 (`drivers.sdk.records.generate`). A
checker can then count or mark them in an array indexed by id (`np.bincount`, a boolean mask) in one
linear pass, instead of hashing them (`pc.unique`, `is_in`, `group_by`, a join), which costs several
times as much at millions of records. Ids that do not fit (not integers, a null, or, where the array
is indexed by them, a negative id or one far above the row count) make `as_numpy` return None, and
the checker takes its general, hash-based path, which gives the same verdict.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import EXAMPLES

SPARSE_FACTOR, SPARSE_SLACK = 4, 65536
"""Ids are dense enough to index an array when every one is below 4 * rows + 65536: the array then
costs at most a few bytes per row (a little more for small tables)."""
INT64_MAX = 2**63 - 1


def as_numpy(ids: pa.ChunkedArray | pa.Array, dense: bool) -> np.ndarray | None:
    """The ids as an int64 numpy array; None when they are not integers, hold a null, or (`dense`) hold
    a negative id or one at or above `SPARSE_FACTOR * len(ids) + SPARSE_SLACK`."""
    if not pa.types.is_integer(ids.type) or ids.null_count:
        return None
    if len(ids) == 0:
        return np.zeros(0, np.int64)
    bounds = pc.min_max(ids)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if high > INT64_MAX or (dense and (low < 0 or high >= SPARSE_FACTOR * len(ids) + SPARSE_SLACK)):
        return None
    return np.asarray(ids.to_numpy(), dtype=np.int64)


def present(ids: np.ndarray, size: int) -> np.ndarray:
    """A boolean mask over 0..size-1: which of those ids occur (ids outside that range are ignored)."""
    mask = np.zeros(size, dtype=bool)
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        ids = ids[(ids >= 0) & (ids < size)]
    mask[ids] = True
    return mask


def first_ids(mask: np.ndarray) -> list[int]:
    """The smallest few ids set in a mask indexed by id: what `verdict.examples` reports."""
    return np.flatnonzero(mask)[:EXAMPLES].tolist()


def smallest_ids(ids: np.ndarray) -> list[int]:
    """The smallest few distinct ids of an array: what `verdict.examples` reports."""
    return np.unique(ids)[:EXAMPLES].tolist()
