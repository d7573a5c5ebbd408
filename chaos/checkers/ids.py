"""Record ids as numpy arrays indexed by id, for the checkers' fast paths.

Generated record ids are dense: the sequence numbers 0..N-1 (`drivers.sdk.records.generate`). A
checker can then count or mark them in an array indexed by id (`np.bincount`, a boolean mask) in one
linear pass, instead of hashing them (`pc.unique`, `is_in`, `group_by`, a join), which costs several
times as much at millions of records. Ids that do not fit (not integers, a null, or, where the array
is indexed by them, a negative id or one far above the row count) make `as_numpy` return None, and
the checker takes its general, hash-based path, which gives the same verdict.

The same helpers serve the checkers' streamed paths (`chaos.checkers.stream`), which see the output a
record batch at a time: `within` takes a batch's ids that index an array of a given size, and
`merge_smallest` folds each batch's examples into the run's.
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
BLOCK = 1 << 20
"""Ids handled at a time where doing them all at once would build an N-long temporary: `in_order`
compares ids with 0..N-1 a block at a time, and the streamed paths deduplicate what they keep once it
has grown by a block."""


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


def in_order(ids: pa.ChunkedArray | pa.Array) -> bool:
    """Whether the ids are exactly 0..len(ids)-1, in order: then the row of id i is row i."""
    if not pa.types.is_integer(ids.type) or ids.null_count:
        return False
    start = 0
    for chunk in ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]:
        for offset in range(0, len(chunk), BLOCK):
            part = chunk.slice(offset, BLOCK).to_numpy()
            if not np.array_equal(part, np.arange(start, start + len(part))):
                return False
            start += len(part)
    return True


def within(ids: pa.Array | pa.ChunkedArray, size: int) -> np.ndarray:
    """The integer ids that index an array of `size`, as int64 (nulls and ids outside 0..size-1 dropped)."""
    if ids.null_count:
        ids = ids.drop_null()
    if ids.type == pa.uint64() and len(ids):
        ids = ids.filter(pc.less(ids, pa.scalar(size, ids.type)))  # numpy would wrap those above int64 round
    values = np.asarray(ids.to_numpy(), dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() >= size):
        values = values[(values >= 0) & (values < size)]
    return values


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


def merge_smallest(found: list[int], more: list[int]) -> list[int]:
    """The smallest few distinct ids of two example lists: a batch's examples folded into the run's,
    the same as the examples of all the batches at once."""
    return sorted(set(found).union(more))[:EXAMPLES]
