"""Schema compatibility: after columns were added, dropped and widened mid-stream, every output record
reads under the final schema with its values preserved.

The final schema must hold every column the workload ever had (a dropped column reads as null for
the records written after the drop), and each value must equal what the workload produced: a
widened column whose values were truncated or wrapped, or an added column lost on the way, fails.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples
from drivers.sdk.records import EVOLVING


def check_schema(expected: pa.Table, output: pa.Table) -> Verdict:
    columns = [c for c in EVOLVING if c in expected.column_names]
    missing = [c for c in columns if c not in output.column_names]
    present = [c for c in columns if c in output.column_names]
    joined = output.select(["id", *present]).join(
        expected.select(["id", *present]).rename_columns(["id", *[f"expected_{c}" for c in present]]),
        "id", join_type="inner")
    bad = pa.array([False] * joined.num_rows, pa.bool_())
    counts: dict[str, int] = {"columns": len(columns), "missing_columns": len(missing)}
    for c in present:
        got, want = joined[c], joined[f"expected_{c}"]
        if got.type != want.type:
            got = got.cast(want.type, safe=False)
        differs = pc.fill_null(pc.not_equal(got, want), True)
        both_null = pc.and_(pc.is_null(joined[c]), pc.is_null(want))
        wrong = pc.and_(differs, pc.invert(both_null))
        counts[f"wrong_{c}"] = int(pc.sum(wrong).as_py() or 0)
        bad = pc.or_(bad, wrong)
    wrong_ids = joined["id"].filter(bad)
    counts["wrong_records"] = len(wrong_ids)
    if "region" in expected.column_names:  # written after the change: the records that carry its new column
        after = expected.filter(pc.is_valid(expected["region"]))["id"]
        counts["after_change"] = int(pc.sum(pc.is_in(output["id"], value_set=after)).as_py() or 0)
    if not missing and len(wrong_ids) == 0:
        return Verdict("schema-compatibility", "pass",
                       f"{joined.num_rows} records read under the final schema ({', '.join(columns)}) "
                       "with their values intact", counts)
    problems = [f"columns missing from the output: {', '.join(missing)}"] if missing else []
    if len(wrong_ids):
        problems.append(f"{len(wrong_ids)} records have changed values")
    return Verdict("schema-compatibility", "fail", "; ".join(problems), counts, examples(wrong_ids))
