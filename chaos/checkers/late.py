"""Late events: every record is in the main output or in the late side output; none is dropped
silently, and none that was on time is routed to the late output.

Which records are late is recomputed from the source itself, independently of the pipeline: in each
partition, in offset order, a record is late when its event time is more than the allowed lateness
behind the highest event time of the records before it in that partition (the split's watermark).

A source that cannot rewind (a live stream) resumes past its checkpoint after a restart: the records
in between never reach the restored pipeline, nor its watermark, which the checkpoint restores. Its
truth marks them `skipped`; they are neither judged nor counted in their partition's watermark, so a
record is judged against exactly the records the pipeline's restored state has seen.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples


def skipped_ids(truth: pa.Table) -> pa.Array:
    """The records a source skipped on a restart (none, for a source without a `skipped` column)."""
    if "skipped" not in truth.column_names:
        return pa.array([], truth.schema.field("id").type)
    return truth["id"].filter(truth["skipped"]).combine_chunks()


def expected_late(truth: pa.Table, allowed_ms: int) -> pa.Array:
    """The ids of the records that are late, from the source's partitions in offset order; the records
    a source skipped are left out, and move no watermark."""
    if "skipped" in truth.column_names:
        truth = truth.filter(pc.invert(truth["skipped"]))
    ordered = truth.select(["partition", "offset", "id", "event_time"]).sort_by(
        [("partition", "ascending"), ("offset", "ascending")])
    late = []
    mark: dict[int, int] = {}
    for partition, event_time in zip(ordered["partition"].to_pylist(), ordered["event_time"].to_pylist()):
        highest = mark.get(partition)
        late.append(highest is not None and event_time < highest - allowed_ms)
        if highest is None or event_time > highest:
            mark[partition] = event_time
    return ordered["id"].filter(pa.array(late, pa.bool_())).combine_chunks()


def _unique_but(ids: pa.ChunkedArray, left_out: pa.Array) -> pa.Array:
    unique = pc.unique(ids)
    return unique.filter(pc.invert(pc.is_in(unique, value_set=left_out)))


def check_late_events(truth: pa.Table, main: pa.Table, late: pa.Table, allowed_ms: int) -> Verdict:
    should_be_late = expected_late(truth, allowed_ms)
    skipped = skipped_ids(truth)
    routed, in_main = _unique_but(late["id"], skipped), _unique_but(main["id"], skipped)
    on_time_routed = routed.filter(pc.invert(pc.is_in(routed, value_set=should_be_late)))
    late_in_main = should_be_late.filter(pc.is_in(should_be_late, value_set=in_main))
    dropped = should_be_late.filter(pc.invert(pc.or_(pc.is_in(should_be_late, value_set=routed),
                                                     pc.is_in(should_be_late, value_set=in_main))))
    counts = {"late": len(should_be_late), "routed_late": len(routed), "on_time_routed_late": len(on_time_routed),
              "late_in_main_output": len(late_in_main), "late_dropped": len(dropped), "skipped": len(skipped)}
    problems = []
    if len(dropped):
        problems.append(f"{len(dropped)} late records were dropped silently")
    if len(on_time_routed):
        problems.append(f"{len(on_time_routed)} on-time records went to the late output")
    if len(late_in_main):
        problems.append(f"{len(late_in_main)} late records were not routed to the late output")
    if not problems:
        return Verdict("late-events", "pass", f"all {len(should_be_late)} late records are in the late output, "
                       "and no on-time record is", counts)
    wrong = pa.concat_arrays([dropped, on_time_routed.combine_chunks() if isinstance(on_time_routed, pa.ChunkedArray)
                              else on_time_routed, late_in_main])
    return Verdict("late-events", "fail", "; ".join(problems), counts, examples(wrong))
