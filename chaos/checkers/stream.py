"""The output as a stream of record batches, and a tally of its ids that fits in one byte per id.

At 100M records the output is several GB as a table, but of each id loss and duplicates only need
to know whether it occurs and whether it occurs more than once, and phantoms needs one batch at a
time next to the expected records. `check_loss`, `check_duplicates` and `check_phantoms` therefore
take the output either as a table or as an iterable of record batches (a Parquet file's
`iter_batches`, a dataset's `to_batches`, a `RecordBatchReader`), which they read once. Their
verdicts are the same either way.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.ids import BLOCK, INT64_MAX, SPARSE_FACTOR, SPARSE_SLACK, merge_smallest
from chaos.checkers.verdict import EXAMPLES, examples

Output = pa.Table | Iterable[pa.RecordBatch]
"""The output as a checker takes it: a whole table, or a stream of record batches that it reads once."""

ALLOWANCE = 1 << 27
"""Ids a stream's tally may always cover in one array (128 MiB): 134M dense ids without a stash."""
SortedIds = tuple[np.ndarray, pa.Array | None, int]
"""A batch's ids as `IdTally.add_sorted` takes them (`sort_ids`)."""
Tally = tuple[int, int, int, list[int]]
"""(ids counted, that is rows with a non-null id; distinct ids; ids that occur more than once; the
smallest of those)."""


class IdTally:
    """How often each id occurs across the batches of a stream, up to 2 ("more than once"), which is
    all that duplicates need: the extra copies are the ids counted minus the distinct ids.

    Ids 0..len(counts)-1 are counted in a uint8 array indexed by id. It grows as larger ids arrive, up
    to `reach()`, so that a few sparse ids cannot make it huge. An id beyond it (or a negative one)
    waits in the stash, which keeps at most two copies of each id, until the array has grown over it
    or, at the end, is counted by sorting. Ids numpy cannot hold (not integers, or above int64) are
    grouped by Arrow instead. A null id is never counted.

    `add` takes a batch's ids as Arrow gives them; `add_sorted` takes them already sorted (`sort_ids`),
    which the caller can do for the next batch on another thread while this one is counted."""

    def __init__(self) -> None:
        self.counts = np.zeros(0, np.uint8)
        self.ids = 0
        self.stash = np.zeros(0, np.int64)
        self.stashed: list[np.ndarray] = []
        self.others: list[pa.Array] = []

    def add(self, ids: pa.Array | pa.ChunkedArray) -> None:
        self.add_sorted(*sort_ids(ids))

    def add_sorted(self, values: np.ndarray, others: pa.Array | None, counted: int) -> None:
        """Count a batch: its integer ids sorted as int64, the ids numpy cannot hold, and how many
        non-null ids it has in all."""
        self.ids += counted
        if others is not None and len(others):
            self._other(others)
        if not values.size:
            return
        self._grow(values)
        inside = slice(np.searchsorted(values, 0), np.searchsorted(values, self.counts.size))
        if inside.start > 0 or inside.stop < values.size:
            self._stash(np.concatenate([values[:inside.start], values[inside.stop:]]))
        count_sorted(self.counts, values[inside])

    def reach(self) -> int:
        """How many ids the array may cover: `SPARSE_FACTOR` per id counted plus `SPARSE_SLACK`, as for
        a whole table; or `ALLOWANCE`, which any stream worth streaming can afford; or 8 per stashed id,
        since a stashed id costs 8 bytes and a covered one 1."""
        waiting = self.stash.size + sum(v.size for v in self.stashed)
        return max(SPARSE_FACTOR * self.ids + SPARSE_SLACK, ALLOWANCE, 8 * waiting)

    def result(self) -> Tally:
        stash = at_most_twice(np.concatenate([self.stash, *self.stashed]))
        stash_twice = stash[1:][stash[1:] == stash[:-1]]  # at most two copies each: every id once
        seen = int(np.count_nonzero(self.counts))
        twice = int(self.counts.sum(dtype=np.int64)) - seen  # each count is 0, 1 or 2
        distinct = seen + stash.size - stash_twice.size
        repeated = twice + stash_twice.size
        example_ids = merge_smallest(_first_twice(self.counts), stash_twice[:EXAMPLES].tolist())
        if self.others:
            grouped = pa.table({"id": pa.chunked_array(self.others)}).group_by("id").aggregate([("id", "count")])
            again = grouped.filter(pc.greater(grouped["id_count"], 1))["id"]
            distinct, repeated = distinct + grouped.num_rows, repeated + len(again)
            example_ids = merge_smallest(example_ids, examples(again) if len(again) else [])
        return self.ids, distinct, repeated, example_ids

    def _grow(self, values: np.ndarray) -> None:
        """When the batch holds an id beyond the array but within `reach()`, grow the array over it and
        over the stashed ids within reach, at least doubling it (each growth copies it), and count the
        stashed ids it now covers."""
        size, reach = self.counts.size, self.reach()
        fits = int(np.searchsorted(values, reach))  # the ids below reach, negative ones included
        if not fits or values[fits - 1] < size:
            return
        stash = np.sort(np.concatenate([self.stash, *self.stashed]))
        stashed_fits = int(np.searchsorted(stash, reach))
        high = max(int(values[fits - 1]), int(stash[stashed_fits - 1]) if stashed_fits else -1)
        grown = np.zeros(max(high + 1, min(2 * size, reach)), np.uint8)
        grown[:size] = self.counts
        self.counts = grown
        inside = slice(np.searchsorted(stash, 0), np.searchsorted(stash, grown.size))
        count_sorted(grown, stash[inside])
        self.stash, self.stashed = np.concatenate([stash[:inside.start], stash[inside.stop:]]), []

    def _stash(self, values: np.ndarray) -> None:
        self.stashed.append(values)
        if sum(v.size for v in self.stashed) > self.stash.size + BLOCK:
            self.stash, self.stashed = at_most_twice(np.concatenate([self.stash, *self.stashed])), []

    def _other(self, ids: pa.Array | pa.ChunkedArray) -> None:
        self.others.extend(ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids])
        if sum(len(a) for a in self.others) > 2 * len(self.others[0]) + BLOCK:
            grouped = pa.table({"id": pa.chunked_array(self.others)}).group_by("id").aggregate([("id", "count")])
            again = grouped.filter(pc.greater(grouped["id_count"], 1))["id"]
            self.others = [pa.concat_arrays([*grouped["id"].chunks, *again.chunks])]


def sort_ids(ids: pa.Array | pa.ChunkedArray) -> SortedIds:
    """A batch's ids as `IdTally.add_sorted` takes them: its integer ids that fit int64, sorted; the
    others (not integers, or above int64), or None; and how many non-null ids it has."""
    if ids.null_count:
        ids = ids.drop_null()
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not pa.types.is_integer(ids.type):
        return np.zeros(0, np.int64), ids, len(ids)
    others = None
    if ids.type == pa.uint64() and len(ids) and pc.max(ids).as_py() > INT64_MAX:
        beyond = pc.greater(ids, pa.scalar(INT64_MAX, ids.type))
        others, ids = ids.filter(beyond), ids.filter(pc.invert(beyond))
    return np.sort(np.asarray(ids.to_numpy(), dtype=np.int64)), others, len(ids) + (len(others) if others else 0)


def count_sorted(counts: np.ndarray, ids: np.ndarray) -> None:
    """Add sorted ids (each within 0..len(counts)-1) to counts that stop at 2. Sorted, an id repeated
    within the batch is next to its copies, so that it counts as repeated, and the array accesses are
    ascending."""
    first = np.empty(ids.size, dtype=bool)
    first[:1] = True
    np.not_equal(ids[1:], ids[:-1], out=first[1:])
    distinct = ids[first]
    counts[distinct] = np.minimum(counts[distinct] + 1, 2)
    counts[ids[1:][~first[1:]]] = 2


def at_most_twice(ids: np.ndarray) -> np.ndarray:
    """The ids sorted, with at most two copies of each: all a count that stops at 2 needs of them."""
    ids = np.sort(ids)
    keep = np.ones(ids.size, dtype=bool)
    keep[2:] = ids[2:] != ids[:-2]
    return ids[keep]


def _first_twice(counts: np.ndarray) -> list[int]:
    """The smallest few ids counted twice, found a block at a time (no mask as long as the array)."""
    found: list[int] = []
    for start in range(0, counts.size, BLOCK):
        found += (np.flatnonzero(counts[start:start + BLOCK] == 2) + start)[:EXAMPLES - len(found)].tolist()
        if len(found) == EXAMPLES:
            break
    return found
