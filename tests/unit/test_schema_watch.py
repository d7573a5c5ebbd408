"""`schema.change_seen`: said once per change, by the worker for a stream and by a table source
for files written under another schema than the one it reads them under."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from chaos.experiment.models import WorkloadSpec
from drivers.row_groups import RowGroupSplits
from drivers.sdk.events import Event
from drivers.sdk.history import History, read_history
from drivers.sdk.records import versioned_tables
from drivers.sdk.schema_watch import SchemaWatch
from tests.unit.crashes import Crash

SPEC = WorkloadSpec(records=40, rate=100, keys=3, payload_size=8, schema_change_at=20)


def changes(path: Path) -> list[dict]:
    return [e for e in read_history(path) if e["event"] == Event.SCHEMA_CHANGE_SEEN]


def test_a_change_is_said_once_with_its_first_record_and_what_changed(tmp_path: Path) -> None:
    v1, v2 = versioned_tables(SPEC, seed=3)
    history = History(tmp_path / "history.jsonl", source="worker-0")
    watch = SchemaWatch(history, 0, "records", ignore=frozenset({"split"}))
    watch.see(v1.schema, 0)
    watch.see(v1.schema.append(pa.field("split", pa.string())), 10)  # an ignored column is no change
    watch.see(v2.schema, 20)
    watch.see(v2.schema, 30)
    history.close()
    [seen] = changes(tmp_path / "history.jsonl")
    assert (seen["first_id"], seen["seen_in"], seen["worker"]) == (20, "records", 0)
    assert (seen["added"], seen["dropped"], seen["changed"]) == (["region"], ["tag"], ["score"])


def test_a_table_source_that_reads_every_file_under_one_schema_still_sees_the_files_change(tmp_path: Path) -> None:
    files = []
    for n, table in enumerate(versioned_tables(SPEC, seed=3)):
        files.append(str(tmp_path / f"part-{n}.parquet"))
        pq.write_table(table, files[-1])
    final = pa.unify_schemas([t.schema for t in versioned_tables(SPEC, seed=3)], promote_options="permissive")
    history = History(tmp_path / "history.jsonl", source="worker-0")

    def project(table: pa.Table) -> pa.Table:
        return pa.Table.from_arrays([table[f.name].cast(f.type) if f.name in table.column_names
                                     else pa.nulls(table.num_rows, f.type) for f in final], schema=final)

    splits = RowGroupSplits(Crash(), convert=project, watch=SchemaWatch(history, 0, "source files"))
    splits.assign(files, 0, 1, {}, pq.ParquetFile)
    handed_out = [splits.poll(final), splits.poll(final)]
    history.close()
    assert [t.schema for t in handed_out] == [final, final]  # downstream sees no change at all
    [seen] = changes(tmp_path / "history.jsonl")
    assert (seen["first_id"], seen["seen_in"], seen["changed"]) == (20, "source files", ["score"])
