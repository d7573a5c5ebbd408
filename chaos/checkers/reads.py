"""What a reader saw during the run: visible data may only grow, and only ever hold what is kept.

The background reader of a watched sink (`chaos.sides.visibility.VisibilityProbe`) polls the
committed output all run long; each observation is the set of ids it saw. Two anomalies are judged
on those observations, not on the final state, because the final state hides them: a two-phase sink
that exposes prepared data and deletes it on rollback ends with the right output whenever the replay
after recovery rebuilds the same records.

- **non-monotonic-read**: an id seen in one observation and missing from a later one. Data became
  visible, then vanished: a reader acted on data that was taken back.
- **aborted-read** (Jepsen's G1a): an id seen during the run that the final output does not hold. No
  commit kept what the reader saw.
- **premature-read**: an id seen before the commit that holds it was decided. In a two-phase commit
  the decision is the coordinator persisting the checkpoint (`checkpoint.persisted`); data a reader
  sees before it was prepared data, exposed. A unit with no decision on record is left out and
  counted, never guessed.

With no observation that saw any data, neither can fail: the verdict is inconclusive, never a pass on
nothing. Vectorised: the observations become one (obs, id) table, grouped by id.
"""

from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples
from chaos.checkers.visibility import Ids, seen_table, unique_ids

_NOTHING_SEEN = "no observation during the run saw any committed data, so no read could be judged"


def _seen(observations: list[dict[str, Any]]) -> pa.Table:
    """(obs, id) for every id of every observation, an id once per observation."""
    parts = [(n, ids) for n, o in enumerate(observations) if len(ids := unique_ids(o.get("ids", [])))]
    if not parts:
        return pa.table({"obs": pa.array([], pa.int64()), "id": pa.array([], pa.int64())})
    return seen_table(parts)


def check_monotonic_reads(observations: list[dict[str, Any]]) -> Verdict:
    """An id seen first in observation f is seen in every later one: n - f times in n observations."""
    seen = _seen(observations)
    counts = {"observations": len(observations), "ids_seen": 0, "vanished_ids": 0}
    if seen.num_rows == 0:
        return Verdict("non-monotonic-read", "inconclusive", _NOTHING_SEEN, counts)
    per_id = seen.group_by("id", use_threads=False).aggregate([("obs", "min"), ("obs", "count")])
    expected = pc.subtract(pa.scalar(len(observations), pa.int64()), per_id["obs_min"])
    vanished = per_id.filter(pc.less(per_id["obs_count"], expected))
    counts.update(ids_seen=per_id.num_rows, vanished_ids=vanished.num_rows)
    if vanished.num_rows == 0:
        return Verdict("non-monotonic-read", "pass", f"every one of {per_id.num_rows} ids, once seen, was seen in "
                       f"every later observation of {len(observations)}", counts)
    return Verdict("non-monotonic-read", "fail", f"{vanished.num_rows} of {per_id.num_rows} ids seen during the run "
                   "vanished from a later observation: visible data was taken back", counts,
                   examples(vanished["id"]))


def check_aborted_reads(observations: list[dict[str, Any]], final_ids: Ids) -> Verdict:
    """Every id a reader saw during the run is in the final output."""
    seen = pc.unique(_seen(observations)["id"])
    counts = {"observations": len(observations), "ids_seen": len(seen), "aborted_ids": 0}
    if len(seen) == 0:
        return Verdict("aborted-read", "inconclusive", _NOTHING_SEEN, counts)
    aborted = seen.filter(pc.invert(pc.is_in(seen, value_set=unique_ids(final_ids))))
    counts["aborted_ids"] = len(aborted)
    if len(aborted) == 0:
        return Verdict("aborted-read", "pass", f"all {len(seen)} ids seen during the run are in the final output",
                       counts)
    return Verdict("aborted-read", "fail", f"{len(aborted)} of {len(seen)} ids seen during the run are not in the "
                   "final output: a reader saw data that no commit kept", counts, examples(aborted))



def check_premature_reads(observations: list[dict[str, Any]], units: pa.Table, decided_at: Mapping[int, float],
                          tolerance: float = 0.1) -> Verdict:
    """`units`: (checkpoint_id, id) of every commit unit, with `committed_at` when the output's own
    commit records say when each landed; `decided_at`: when each unit's commit was decided
    (wall-clock seconds, the probe's clock). An id seen at `ts` in a unit decided after
    `ts + tolerance` was visible before its commit was decided; a unit whose commit landed more than
    `tolerance` before its decision was readable by anyone before it, whether a poll fell there or
    not; a unit whose `committed_at` is null (no reliable record) is not judged that way, and is
    counted. Ids in several units (a replay) are left out."""
    seen = _seen(observations)
    pairs = units.select(["checkpoint_id", "id"]).cast(pa.schema([("checkpoint_id", pa.int64()), ("id", pa.int64())]))
    owners = pairs.group_by("id", use_threads=False).aggregate([("checkpoint_id", "count_distinct")])
    single = owners.filter(pc.equal(owners["checkpoint_id_count_distinct"], 1))["id"]
    pairs = pairs.filter(pc.is_in(pairs["id"], value_set=single))
    decided = pa.table({"checkpoint_id": pa.array(list(decided_at), pa.int64()),
                        "decided_at": pa.array(list(decided_at.values()), pa.float64())})
    undecided = pc.unique(pairs["checkpoint_id"]).filter(
        pc.invert(pc.is_in(pc.unique(pairs["checkpoint_id"]), value_set=decided["checkpoint_id"])))
    hasty = _committed_before_decided(units, decided, tolerance)
    counts = {"observations": len(observations), "units": len(pc.unique(pairs["checkpoint_id"])),
              "units_without_decision": len(undecided), "premature_ids": 0,
              "units_committed_before_decided": hasty.num_rows,
              "units_without_commit_time": _untimed(units)}
    if hasty.num_rows:
        lead = pc.max(pc.subtract(hasty["decided_at"], hasty["committed_at"])).as_py()
        hasty_ids = pc.unique(pairs.filter(pc.is_in(pairs["checkpoint_id"], value_set=hasty["checkpoint_id"]))["id"])
        counts["premature_ids"] = len(hasty_ids)
        return Verdict("premature-read", "fail", f"{hasty.num_rows} commits landed in the output before they were "
                       f"decided (up to {lead:.1f}s before, by their own commit records): {len(hasty_ids)} ids were "
                       "readable before their commit was decided", counts, examples(hasty_ids))
    if seen.num_rows == 0:
        return Verdict("premature-read", "inconclusive", _NOTHING_SEEN, counts)
    if counts["units"] == len(undecided):
        return Verdict("premature-read", "inconclusive", f"none of the {counts['units']} units of the output has a "
                       "commit decision on record, so no read could be judged against one", counts)
    times = pa.table({"obs": pa.array(range(len(observations)), pa.int64()),
                      "ts": pa.array([float(o.get("ts", 0.0)) for o in observations], pa.float64())})
    judged = seen.join(pairs, "id", join_type="inner").join(decided, "checkpoint_id", join_type="inner")
    judged = judged.join(times, "obs", join_type="inner")
    early = judged.filter(pc.greater(judged["decided_at"], pc.add(judged["ts"], tolerance)))
    premature = pc.unique(early["id"])
    counts["premature_ids"] = len(premature)
    if len(premature) == 0:
        return Verdict("premature-read", "pass", "no id was seen before its commit was decided, in "
                       f"{len(observations)} observations of {counts['units'] - len(undecided)} units", counts)
    lead = pc.max(pc.subtract(early["decided_at"], early["ts"])).as_py()
    return Verdict("premature-read", "fail", f"{len(premature)} ids were seen before the commit that holds them was "
                   f"decided (up to {lead:.1f}s before): prepared data was visible", counts, examples(premature))


def _untimed(units: pa.Table) -> int:
    """Units whose commit records give no time to judge by (none at all, or not a reliable one)."""
    if "committed_at" not in units.column_names:
        return len(pc.unique(units["checkpoint_id"]))
    return len(pc.unique(units.filter(pc.is_null(units["committed_at"]))["checkpoint_id"]))


def _committed_before_decided(units: pa.Table, decided: pa.Table, tolerance: float) -> pa.Table:
    """(checkpoint_id, committed_at, decided_at) of the units whose commit record is older than their
    decision by more than `tolerance`; none when the output's records give no commit times."""
    if "committed_at" not in units.column_names:
        return pa.table({"checkpoint_id": pa.array([], pa.int64()), "committed_at": pa.array([], pa.float64()),
                         "decided_at": pa.array([], pa.float64())})
    landed = units.select(["checkpoint_id", "committed_at"]).cast(
        pa.schema([("checkpoint_id", pa.int64()), ("committed_at", pa.float64())]))
    landed = landed.filter(pc.is_valid(landed["committed_at"])).group_by("checkpoint_id", use_threads=False).aggregate(
        [("committed_at", "min")]).rename_columns(["checkpoint_id", "committed_at"])
    judged = landed.join(decided, "checkpoint_id", join_type="inner")
    return judged.filter(pc.less(pc.add(judged["committed_at"], tolerance), judged["decided_at"]))
