"""No phantoms or corruption: every output record was produced, and its payload checksum matches."""

from __future__ import annotations

import zlib

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples


def check_phantoms(expected: pa.Table, output: pa.Table) -> Verdict:
    phantom = output.filter(pc.invert(pc.is_in(output["id"], value_set=expected["id"])))
    joined = output.select(["id", "payload", "checksum"]).join(
        expected.select(["id", "checksum"]).rename_columns(["id", "expected_checksum"]), "id", join_type="inner")
    recomputed = pa.array([zlib.crc32(p.encode()) for p in joined["payload"].to_pylist()], pa.int64())
    bad = pc.or_(pc.not_equal(joined["checksum"], joined["expected_checksum"]),
                 pc.not_equal(recomputed, joined["expected_checksum"]))
    corrupted = joined.filter(bad)
    counts = {"phantoms": phantom.num_rows, "corrupted": corrupted.num_rows}
    if phantom.num_rows == 0 and corrupted.num_rows == 0:
        return Verdict("no-phantoms", "pass", "every output record was produced and is intact", counts)
    return Verdict("no-phantoms", "fail",
                   f"{phantom.num_rows} records were never produced, {corrupted.num_rows} have a bad checksum",
                   counts, examples(pc.unique(pa.concat_arrays([phantom["id"].combine_chunks(), corrupted["id"].combine_chunks()]))))
