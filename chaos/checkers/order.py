"""Per-key order: within a key, records reach the output in the order they were produced.

The output's order is the order of the rows in the table as given: the caller passes them in
commit order. Ids grow with production order within a key, so a key is out of order when a record
appears after a record of the same key with a larger id. Only the first copy of an id counts: a
replayed duplicate (at least once) re-delivers ids already seen and is not a reordering.

Vectorised, no per-row Python: keep the first row of each (key, id), sort by (key, position),
and compare each id with the running maximum of its key. The per-key running maximum is one
global `cumulative_max` over `key_code * (distinct ids + 1) + dense rank of id`, which keeps the
keys apart (every value of a later key is above every value of an earlier one) without overflow.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.verdict import Verdict, examples


def check_key_order(output: pa.Table, required: bool) -> Verdict:
    rows = pa.table({"key": output["key"], "id": output["id"],
                     "pos": pa.array(range(output.num_rows), pa.int64())})
    firsts = rows.group_by(["key", "id"], use_threads=False).aggregate([("pos", "min")])
    keys = pc.dictionary_encode(firsts["key"].combine_chunks(), null_encoding="encode").indices
    firsts = pa.table({"key_code": pc.cast(keys, pa.int64()), "id": firsts["id"], "pos": firsts["pos_min"]})
    firsts = firsts.sort_by([("key_code", "ascending"), ("pos", "ascending")])
    span = firsts.num_rows + 1
    rank = pc.cast(pc.rank(firsts["id"], sort_keys="ascending", tiebreaker="dense"), pa.int64())
    value = pc.add(pc.multiply(firsts["key_code"], span), rank)
    late = pc.less(value, pc.cumulative_max(value)) if firsts.num_rows else pa.array([], pa.bool_())
    offending = firsts.filter(late)
    bad_keys = len(pc.unique(offending["key_code"]))
    counts = {"output_records": output.num_rows, "keys": len(pc.unique(firsts["key_code"])),
              "keys_out_of_order": bad_keys, "records_out_of_order": offending.num_rows}
    if offending.num_rows == 0:
        return Verdict("per-key-order", "pass", f"every one of {counts['keys']} keys is in production order", counts)
    status = "fail" if required else "info"
    note = "" if required else " (order is not promised)"
    return Verdict("per-key-order", status,
                   f"{bad_keys} keys have records out of order, {offending.num_rows} records arrive after "
                   f"a later record of their key{note}", counts, examples(offending["id"]))
