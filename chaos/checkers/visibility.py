"""Atomic visibility and, for exactly once, the per-partition prefix.

Atomic visibility: a background reader polls the committed output during the run; each
observation is the set of record ids it saw. The output's commit records (Parquet manifests, the
Delta log, Iceberg snapshots, the Hudi timeline) say which ids each committed checkpoint (in a run:
one worker's commit of a checkpoint) made visible. An observation that holds some but not all ids of
one checkpoint saw a partial commit. An id that several checkpoints carry (a replay under at least once) cannot tell
which of them it came from, so such ids are left out of the comparison and counted as ambiguous.

Vectorised: the observations become one (obs, id) table; a hash join with the (checkpoint_id, id)
table and a group-by count per (obs, checkpoint_id) compared with each checkpoint's total finds
the partial ones. Observations are joined in chunks of about CHUNK_ROWS ids to bound memory.

Prefix: per source partition (ground truth with `partition`, `offset`, `id`), the output holds
exactly the records at offsets below some bound. Offsets are compared, not counted, so the gaps
that transaction markers leave in a Kafka partition's offsets are not holes.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples

CHUNK_ROWS = 5_000_000
Ids = pa.Array | pa.ChunkedArray | Iterable[int]


def unique_ids(values: Ids) -> pa.Array:
    """Ids as one int64 array, each once, nulls dropped: whatever form an observation gives them in."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(list(values), pa.int64())
    return pc.unique(pc.cast(values, pa.int64()).drop_null())


def checkpoint_table(committed: pa.Table | Mapping[int, Ids]) -> pa.Table:
    """The checkpoints as a (checkpoint_id, id) table; a mapping checkpoint id -> ids is accepted too."""
    if isinstance(committed, pa.Table):
        return committed.select(["checkpoint_id", "id"]).cast(
            pa.schema([("checkpoint_id", pa.int64()), ("id", pa.int64())]))
    parts = [(cid, unique_ids(ids)) for cid, ids in committed.items()]
    return pa.table({
        "checkpoint_id": pa.concat_arrays([pa.repeat(pa.scalar(cid, pa.int64()), len(a)) for cid, a in parts] or
                                          [pa.array([], pa.int64())]),
        "id": pa.concat_arrays([a for _, a in parts] or [pa.array([], pa.int64())]),
    })


def seen_table(chunk: Sequence[tuple[int, pa.Array]]) -> pa.Table:
    """(obs, id) rows of numbered observations."""
    return pa.table({
        "obs": pa.concat_arrays([pa.repeat(pa.scalar(n, pa.int64()), len(a)) for n, a in chunk]),
        "id": pa.concat_arrays([a for _, a in chunk]),
    })


def _chunks(observed: list[tuple[int, pa.Array]]) -> Iterator[list[tuple[int, pa.Array]]]:
    chunk: list[tuple[int, pa.Array]] = []
    size = 0
    for item in observed:
        chunk.append(item)
        size += len(item[1])
        if size >= CHUNK_ROWS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _partial(chunk: list[tuple[int, pa.Array]], pairs: pa.Table, totals: pa.Table) -> pa.Table:
    """(obs, checkpoint_id) of each observation in the chunk that saw some but not all of a checkpoint."""
    seen = seen_table(chunk).join(pairs, "id", join_type="inner")
    per = seen.group_by(["obs", "checkpoint_id"], use_threads=False).aggregate([("id", "count")])
    per = per.join(totals, "checkpoint_id", join_type="inner")
    return per.filter(pc.less(per["id_count"], per["total"])).select(["obs", "checkpoint_id"])


def check_atomic_visibility(observations: list[dict[str, Any]],
                            committed_checkpoints: pa.Table | Mapping[int, Ids],
                            read_errors: int | None = None,
                            fault_windows: Sequence[tuple[float, float]] | None = None) -> Verdict:
    """`observations`: `[{"ts": float, "ids": pa.Array | ChunkedArray | iterable of int}, ...]`.
    `committed_checkpoints`: a table with `checkpoint_id` and `id` columns, or a mapping
    checkpoint id -> ids (the ids that checkpoint's commit made visible).
    `read_errors`: the polls that failed, if a probe reports them (counted as `read_errors`).
    `fault_windows`: (start, end) of each injected fault, when the run had any.

    A pass needs observations that could have seen a partial commit (`_vacuous`): committed data,
    and a commit seen landing between two polls, after a fault began when there were faults.
    Otherwise the verdict is inconclusive, never a pass on nothing."""
    pairs = checkpoint_table(committed_checkpoints).group_by(["checkpoint_id", "id"], use_threads=False).aggregate([])
    owners = pairs.group_by("id", use_threads=False).aggregate([("checkpoint_id", "count")])
    ambiguous = owners.filter(pc.greater(owners["checkpoint_id_count"], 1))["id"]
    pairs = pairs.filter(pc.invert(pc.is_in(pairs["id"], value_set=ambiguous)))
    totals = pairs.group_by("checkpoint_id", use_threads=False).aggregate([("id", "count")])
    totals = pa.table({"checkpoint_id": totals["checkpoint_id"], "total": totals["id_count"]})

    observed = [(n, unique_ids(o.get("ids", []))) for n, o in enumerate(observations)]
    partial = pa.concat_tables(
        [_partial(chunk, pairs, totals) for chunk in _chunks(observed)]
        + [pa.table({"obs": pa.array([], pa.int64()), "checkpoint_id": pa.array([], pa.int64())})])

    counts = {"observations": len(observations), "partial_observations": len(pc.unique(partial["obs"])),
              "commits": totals.num_rows, "partial_commits": len(pc.unique(partial["checkpoint_id"])),
              "ambiguous_ids": len(ambiguous)}
    if read_errors is not None:
        counts["read_errors"] = read_errors
    if partial.num_rows == 0:
        vacuous = _vacuous(observations, observed, read_errors or 0, fault_windows or [])
        if vacuous is not None:
            return Verdict("atomic-visibility", "inconclusive", vacuous, counts)
        return Verdict("atomic-visibility", "pass", f"none of {len(observations)} observations saw part of any of "
                       f"the {totals.num_rows} commits in the output", counts)
    # per partially seen checkpoint, its smallest id missing from the first observation that saw it partly
    first = partial.group_by("checkpoint_id", use_threads=False).aggregate([("obs", "min")])
    first = pa.table({"checkpoint_id": first["checkpoint_id"], "obs": first["obs_min"]})
    wanted = first.join(pairs, "checkpoint_id", join_type="inner")
    shown = pa.concat_tables([seen_table([observed[n]]) for n in pc.unique(first["obs"]).to_pylist()])
    missing = wanted.join(shown, ["obs", "id"], join_type="left anti")
    first_missing = missing.group_by("checkpoint_id", use_threads=False).aggregate([("id", "min")])["id_min"]
    return Verdict("atomic-visibility", "fail",
                   f"{counts['partial_observations']} of {len(observations)} observations saw part of a commit "
                   f"({counts['partial_commits']} of the {totals.num_rows} commits partly visible)", counts,
                   examples(first_missing))


def _vacuous(observations: list[dict[str, Any]], observed: list[tuple[int, pa.Array]], read_errors: int,
             fault_windows: Sequence[tuple[float, float]]) -> str | None:
    """Why the observations could not have seen a partial commit, or None when they could: the
    reader must have seen committed data and seen a commit land between two of its polls, and, with
    faults, one landing at or after the first fault began (the recovery commit, where a partial
    commit is likeliest)."""
    if not any(len(ids) for _, ids in observed):
        failed = f" ({read_errors} polls failed)" if read_errors else ""
        return f"no observation during the run saw any committed data{failed}, so none could see a partial commit"
    landed = [observations[later].get("ts") for (_, before), (later, after) in zip(observed, observed[1:])
              if len(before) != len(after)]
    if not landed:
        return ("the reader never saw a commit land (the output was the same in every observation), so it "
                "never polled while one was being made visible")
    if fault_windows:
        first_fault = min(start for start, _ in fault_windows)
        if not any(isinstance(ts, (int, float)) and ts >= first_fault for ts in landed):
            return "the reader saw no commit land after the first fault began, where a partial commit is likeliest"
    return None


def check_prefix(output: pa.Table, truth: pa.Table, required: bool = True) -> Verdict:
    """`truth`: the source's records with `partition`, `offset` and `id`; `output`: the committed `id`s."""
    present = pc.is_in(truth["id"], value_set=pc.unique(output["id"]))
    rows = pa.table({"partition": truth["partition"], "offset": truth["offset"], "id": truth["id"], "present": present})
    reach = rows.filter(present).group_by("partition", use_threads=False).aggregate([("offset", "max")])
    holes = rows.filter(pc.invert(present)).join(reach, "partition", join_type="inner")
    holes = holes.filter(pc.less(holes["offset"], holes["offset_max"]))
    bad = pc.unique(holes["partition"])
    counts = {"partitions": len(pc.unique(truth["partition"])), "partitions_with_gaps": len(bad),
              "gap_records": holes.num_rows}
    if holes.num_rows == 0:
        return Verdict("prefix", "pass",
                       f"the output is a gap-free prefix of each of {counts['partitions']} partitions", counts)
    status = "fail" if required else "info"
    return Verdict("prefix", status, f"{len(bad)} partitions have {holes.num_rows} records missing below the last "
                   f"one in the output", counts, examples(holes["id"]))
