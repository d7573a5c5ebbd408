"""No loss: every record the source really holds is in the committed output."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.ids import BLOCK, as_numpy, first_ids, present, within
from chaos.checkers.stream import Output
from chaos.checkers.verdict import Verdict, examples

Found = tuple[int, int, list[int]]
"""(distinct source records, how many of them are lost, the smallest lost ids)."""
THREADS = 2
"""Threads that unmark a stream's batches at once (at most one per core): numpy's scatter into the
array releases the GIL, and unmarking an id twice, or from two threads, is harmless."""


def check_loss(truth: pa.Table, output: Output, required: bool = True) -> Verdict:
    if isinstance(output, pa.Table):
        found = lost_by_position(truth, output)
        source, lost, example_ids = found if found is not None else lost_by_hash(truth, output)
    else:
        source, lost, example_ids = lost_in_stream(truth, output)
    counts = {"source_records": source, "lost": lost}
    if lost == 0:
        return Verdict("no-loss", "pass", f"all {source} source records are in the output", counts)
    status = "fail" if required else "info"
    return Verdict("no-loss", status, f"{lost} of {source} source records are missing from the output",
                   counts, example_ids)


def lost_by_position(truth: pa.Table, output: pa.Table) -> Found | None:
    """Dense ids: mark the source's and the output's ids in two masks indexed by id, one pass each.
    None when the source's ids are not dense, or either side's are not integers or hold a null."""
    truth_ids = as_numpy(truth["id"], dense=True)
    output_ids = as_numpy(output["id"], dense=False)
    if truth_ids is None or output_ids is None:
        return None
    size = int(truth_ids.max()) + 1 if truth_ids.size else 0
    in_truth = present(truth_ids, size)
    lost = in_truth & ~present(output_ids, size)
    return int(np.count_nonzero(in_truth)), int(np.count_nonzero(lost)), first_ids(lost)


def lost_by_hash(truth: pa.Table, output: pa.Table) -> Found:
    """Any ids: the distinct source ids that are not in the set of output ids."""
    truth_ids = pc.unique(truth["id"])
    missing = truth_ids.filter(pc.invert(pc.is_in(truth_ids, value_set=pc.unique(output["id"]))))
    return len(truth_ids), len(missing), examples(missing) if len(missing) else []


def lost_in_stream(truth: pa.Table, batches: Iterable[pa.RecordBatch]) -> Found:
    """The output as a stream of record batches, read once. Dense source ids: mark the source's ids in
    one boolean array indexed by id (one byte per source id), and unmark each batch's ids, on a pool of
    threads (unmarking is idempotent, and numpy releases the GIL); what stays marked is lost. Other
    source ids: collect the output's distinct ids, all the hash path needs of it."""
    truth_ids = as_numpy(truth["id"], dense=True)
    if truth_ids is None:
        return lost_by_hash(truth, pa.table({"id": distinct_ids(truth["id"].type, batches)}))
    size = int(truth_ids.max()) + 1 if truth_ids.size else 0
    lost = present(truth_ids, size)
    source, workers = int(np.count_nonzero(lost)), min(THREADS, pa.cpu_count())

    def unmark(ids: pa.Array) -> None:
        if pa.types.is_integer(ids.type):
            lost[within(ids, size)] = False
        else:  # compared as the hash path compares them (`is_in` casts the output's ids to the source's type)
            lost[truth_ids[pc.is_in(truth["id"], value_set=ids).to_numpy()]] = False

    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[None]] = deque()
        for batch in batches:
            pending.append(pool.submit(unmark, batch.column("id")))
            if len(pending) > 2 * workers:
                pending.popleft().result()
        for future in pending:
            future.result()
    return source, int(np.count_nonzero(lost)), first_ids(lost)


def distinct_ids(id_type: pa.DataType, batches: Iterable[pa.RecordBatch]) -> pa.ChunkedArray:
    """The distinct ids of a stream of batches, deduplicated again whenever they have doubled (of the
    type of the first batch's ids, or `id_type` when there is none)."""
    parts: list[pa.Array] = []
    kept = collected = 0
    for batch in batches:
        parts.append(pc.unique(batch.column("id")))
        collected += len(parts[-1])
        if collected > 2 * kept + BLOCK:
            parts = [pc.unique(pa.chunked_array(parts))]
            kept = collected = len(parts[0])
    return pa.chunked_array(parts, None if parts else id_type)
