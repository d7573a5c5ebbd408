"""What a concurrent consumer of a Kafka output was handed, judged as Jepsen judges a queue.

The consumer (`chaos.sides.kafka_polls.TopicPoller`) reads the output topic read_committed all run
long; each row of its table is one record handed to it: (session, ts, partition, offset, id), in
the order handed. A session is one consumer instance, reading from the beginning. Within a session
and a partition, a read_committed consumer is handed offsets in increasing order; it skips only the
offsets no read_committed reader may see (aborted records, transaction markers).

- **poll-skip**: the consumer went from offset a to offset b, and the final read_committed read
  holds an offset between them: it jumped over a record that was there to read.
- **non-monotonic-poll**: a later offset lower than an earlier one, within a session and partition.
- **duplicate-delivery**: the same offset handed twice within one session.
- **lost-write**: a record the pipeline had committed (a persisted checkpoint covers it in the source)
  that no reader ever saw, neither this consumer nor the final read.

With nothing handed to the consumer, none of them can fail: inconclusive, never a pass on nothing.
Vectorised: numpy over the table sorted by (session, partition, order handed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples

_NOTHING_HANDED = "the concurrent consumer was handed no record during the run, so no poll could be judged"


def _sequences(polls: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """The polls sorted by session, partition and the order handed, and each row's previous offset in
    its session and partition (-1 before the first: a session reads from the beginning)."""
    ordered = polls.append_column("order", pa.array(np.arange(polls.num_rows, dtype=np.int64))).sort_by(
        [("session", "ascending"), ("partition", "ascending"), ("order", "ascending")])
    session = ordered["session"].to_numpy()
    partition = ordered["partition"].to_numpy()
    offset = ordered["offset"].to_numpy()
    previous = np.concatenate([[-1], offset[:-1]]).astype(np.int64)
    continues = np.concatenate([[False], (session[1:] == session[:-1]) & (partition[1:] == partition[:-1])])
    previous[~continues] = -1
    return ordered, previous


def poll_observations(polls: pa.Table) -> list[dict[str, Any]]:
    """The polls as observations of the read checkers (`chaos.checkers.reads`): one per batch handed,
    at its time, holding the ids it handed (the records of one batch share their `ts`)."""
    ts = polls["ts"].to_numpy()
    ids = polls["id"].to_numpy()
    order = np.argsort(ts, kind="stable")
    ts, ids = ts[order], ids[order]
    starts = np.flatnonzero(np.concatenate([[True], ts[1:] != ts[:-1]])) if len(ts) else np.array([], np.int64)
    ends = np.concatenate([starts[1:], [len(ts)]]).astype(np.int64)
    return [{"ts": float(ts[start]), "ids": pa.array(ids[start:end], pa.int64())} for start, end in zip(starts, ends)]


def check_poll_skips(polls: pa.Table, output: pa.Table) -> Verdict:
    """`output`: the final read_committed read, with its `partition` and `offset`."""
    counts = {"handed": polls.num_rows, "skipped_offsets": 0}
    if polls.num_rows == 0:
        return Verdict("poll-skip", "inconclusive", _NOTHING_HANDED, counts)
    ordered, previous = _sequences(polls)
    partition = ordered["partition"].to_numpy()
    offset = ordered["offset"].to_numpy()
    skipped = np.zeros(len(offset), dtype=np.int64)
    for part in np.unique(partition):
        there = np.sort(output.filter(pc.equal(output["partition"], int(part)))["offset"].to_numpy())
        rows = partition == part
        ahead = rows & (offset > previous + 1)
        skipped[ahead] = (np.searchsorted(there, offset[ahead], side="left")
                          - np.searchsorted(there, previous[ahead], side="right"))
    jumps = skipped > 0
    counts["skipped_offsets"] = int(skipped[jumps].sum())
    if not jumps.any():
        return Verdict("poll-skip", "pass", f"the consumer was handed {polls.num_rows} records over "
                       f"{len(np.unique(ordered['session'].to_numpy()))} sessions without jumping over any offset "
                       "the topic holds", counts)
    return Verdict("poll-skip", "fail", f"the consumer jumped over {counts['skipped_offsets']} offsets that the "
                   "topic holds, read_committed: records there to read were never handed to it", counts,
                   examples(ordered["id"].filter(pa.array(jumps))))


def check_monotonic_polls(polls: pa.Table) -> Verdict:
    counts = {"handed": polls.num_rows, "backward_steps": 0}
    if polls.num_rows == 0:
        return Verdict("non-monotonic-poll", "inconclusive", _NOTHING_HANDED, counts)
    ordered, previous = _sequences(polls)
    backwards = ordered["offset"].to_numpy() < previous
    counts["backward_steps"] = int(backwards.sum())
    if not backwards.any():
        return Verdict("non-monotonic-poll", "pass", f"within each session and partition, the {polls.num_rows} "
                       "offsets handed only ever increased", counts)
    return Verdict("non-monotonic-poll", "fail", f"the consumer was handed a lower offset after a higher one "
                   f"{counts['backward_steps']} times within one session and partition", counts,
                   examples(ordered["id"].filter(pa.array(backwards))))


def check_duplicate_deliveries(polls: pa.Table) -> Verdict:
    counts = {"handed": polls.num_rows, "redelivered_offsets": 0}
    if polls.num_rows == 0:
        return Verdict("duplicate-delivery", "inconclusive", _NOTHING_HANDED, counts)
    per_offset = polls.group_by(["session", "partition", "offset"], use_threads=False).aggregate(
        [("id", "count"), ("id", "min")])
    again = per_offset.filter(pc.greater(per_offset["id_count"], 1))
    counts["redelivered_offsets"] = again.num_rows
    if again.num_rows == 0:
        return Verdict("duplicate-delivery", "pass", f"no offset was handed twice within a session, of "
                       f"{polls.num_rows} handed", counts)
    return Verdict("duplicate-delivery", "fail", f"{again.num_rows} offsets were handed more than once within one "
                   "session", counts, examples(again["id_min"]))


def check_lost_writes(committed_ids: pa.Array, polls: pa.Table, output: pa.Table, required: bool = True) -> Verdict:
    """`committed_ids`: the ids of the source records a persisted checkpoint covers (the pipeline said
    it was done with them); `output`: every record read after the run (a late side output's too).
    Not `required` (a pipeline allowed to lose): counted as `info`."""
    committed = pc.unique(committed_ids.cast(pa.int64()))
    counts = {"committed": len(committed), "lost": 0}
    if len(committed) == 0:
        return Verdict("lost-write", "inconclusive", "no checkpoint covering any source record was persisted, so "
                       "no committed write could be looked for", counts)
    seen = pa.concat_arrays([polls["id"].combine_chunks().cast(pa.int64()),
                             output["id"].combine_chunks().cast(pa.int64())])
    lost = committed.filter(pc.invert(pc.is_in(committed, value_set=seen)))
    counts["lost"] = len(lost)
    if len(lost) == 0:
        return Verdict("lost-write", "pass", f"every one of {len(committed)} records the pipeline committed was seen "
                       "by a reader", counts)
    return Verdict("lost-write", "fail" if required else "info", f"{len(lost)} of {len(committed)} records the "
                   "pipeline committed were never seen by any reader, during the run or after it", counts,
                   examples(lost))
