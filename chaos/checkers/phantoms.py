"""No phantoms or corruption: every output record was produced, and its payload checksum matches.

The generated record's checksum is the CRC32 of its payload, so an output payload equal to the
generated one has a matching CRC32 by construction: comparing payloads (vectorised) replaces
recomputing the CRC32 of every output row in Python, and is stricter (it also catches a changed
payload whose CRC32 happens to collide).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples


def check_phantoms(expected: pa.Table, output: pa.Table) -> Verdict:
    phantom = output.filter(pc.invert(pc.is_in(output["id"], value_set=expected["id"])))
    joined = output.select(["id", "payload", "checksum"]).join(
        expected.select(["id", "payload", "checksum"]).rename_columns(["id", "expected_payload", "expected_checksum"]),
        "id", join_type="inner")
    same_payload = pc.fill_null(pc.equal(joined["payload"], joined["expected_payload"]), False)
    same_checksum = pc.fill_null(pc.equal(joined["checksum"], joined["expected_checksum"]), False)
    bad = pc.invert(pc.and_(same_payload, same_checksum))
    corrupted = joined.filter(bad)
    counts = {"phantoms": phantom.num_rows, "corrupted": corrupted.num_rows}
    if phantom.num_rows == 0 and corrupted.num_rows == 0:
        return Verdict("no-phantoms", "pass", "every output record was produced and is intact", counts)
    return Verdict("no-phantoms", "fail",
                   f"{phantom.num_rows} records were never produced, {corrupted.num_rows} have a bad checksum",
                   counts, examples(pc.unique(pa.concat_arrays([phantom["id"].combine_chunks(), corrupted["id"].combine_chunks()]))))
