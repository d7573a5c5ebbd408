"""The PostgreSQL plug-in against a real PostgreSQL, through the testbed's pytest plugin
(`chaos_env`, `run_experiment`), as a connector team would test its own connector."""

from __future__ import annotations

import pyarrow as pa
import pytest
from chaos_postgres.database import connect, create_input, to_arrow
from chaos_postgres.sink import PostgresTwoPhaseSink
from chaos_postgres.source import SPLIT_IDS, PostgresBatchSource

from drivers.sdk import CommitError, NoCrashes
from drivers.sdk.records import SCHEMA, expected_table


def rows(dsn: str, table: str) -> list[int]:
    with connect(dsn) as conn:
        return sorted(i for (i,) in conn.execute(f"SELECT id FROM {table}").fetchall())


def prepared(dsn: str, prefix: str) -> list[str]:
    with connect(dsn) as conn:
        return [g for (g,) in conn.execute("SELECT gid FROM pg_prepared_xacts WHERE starts_with(gid, %s) "
                                           "ORDER BY gid", (prefix,)).fetchall()]


@pytest.fixture
def dsn(chaos_env) -> str:  # type: ignore[no-untyped-def]
    return chaos_env.postgres_dsn()


def batch(ids: range) -> pa.Table:
    return pa.table({"id": list(ids), "key": [f"k{i}" for i in ids], "event_time": list(ids),
                     "payload": ["p"] * len(ids), "checksum": list(ids), "score": [2**31 + i for i in ids]})


def test_a_prepared_checkpoint_is_invisible_until_committed_and_committing_again_is_a_no_op(dsn: str) -> None:
    sink = PostgresTwoPhaseSink(dsn, "plugin_sink_once", "job-once", 0, NoCrashes())
    sink.write(batch(range(10)))
    handle = sink.prepare(1)
    assert prepared(dsn, sink.prefix) == [handle.payload["gid"]] and rows(dsn, "plugin_sink_once") == []
    sink.commit(handle)
    sink.commit(handle)  # a commit repeated after a lost answer: recognised, not repeated
    assert rows(dsn, "plugin_sink_once") == list(range(10)) and prepared(dsn, sink.prefix) == []
    with connect(dsn) as conn:
        (doc,) = conn.execute("SELECT doc FROM plugin_sink_once WHERE id = 3").fetchone()  # type: ignore[misc]
    assert doc == {"score": 2**31 + 3}, "a widened value keeps every bit"


def test_recovery_commits_the_restored_checkpoint_and_rolls_back_the_orphans(dsn: str) -> None:
    sink = PostgresTwoPhaseSink(dsn, "plugin_sink_recover", "job-recover", 1, NoCrashes())
    sink.write(batch(range(0, 5)))
    restored = sink.prepare(1)
    sink.write(batch(range(5, 9)))
    orphan = sink.prepare(2)  # prepared, but its checkpoint was never persisted
    again = PostgresTwoPhaseSink(dsn, "plugin_sink_recover", "job-recover", 1, NoCrashes())
    again.recover([restored])
    assert rows(dsn, "plugin_sink_recover") == list(range(5)) and prepared(dsn, again.prefix) == []
    with pytest.raises(CommitError, match="neither prepared nor committed"):
        again.commit(orphan)


def test_the_source_reads_its_ranges_in_id_order_and_resumes_at_its_positions(dsn: str) -> None:
    from chaos.experiment.models import WorkloadSpec

    spec = WorkloadSpec(records=2 * SPLIT_IDS + 100, rate=1000, keys=5, payload_size=8)
    expected = expected_table(spec, seed=1)
    with connect(dsn) as conn:
        create_input(conn, "plugin_source_input")
        conn.execute("TRUNCATE plugin_source_input")
        with conn.cursor().copy("COPY plugin_source_input (id, key, event_time, payload, checksum) FROM STDIN") as copy:
            for row in expected.to_pylist():
                copy.write_row([row["id"], row["key"], row["event_time"], row["payload"], row["checksum"]])
    source = PostgresBatchSource(dsn, "plugin_source_input", spec.records, NoCrashes())
    source.open(0, 2, None)  # ranges 0 and 2 of [0, 500), [500, 1000), [1000, 1100)
    first = source.poll(300, 0)
    assert first.schema == SCHEMA and first["id"].to_pylist() == list(range(300))
    resumed = PostgresBatchSource(dsn, "plugin_source_input", spec.records, NoCrashes())
    resumed.open(0, 2, source.snapshot_positions())
    read = []
    while not resumed.exhausted():
        read += resumed.poll(1000, 0)["id"].to_pylist()
    assert read == list(range(300, SPLIT_IDS)) + list(range(2 * SPLIT_IDS, 2 * SPLIT_IDS + 100))
    assert to_arrow([]).num_rows == 0


def test_a_pipeline_into_postgres_loses_and_duplicates_nothing_when_its_link_is_cut(run_experiment) -> None:  # type: ignore[no-untyped-def]
    result = run_experiment({
        "name": "plugin-postgres-link-cut", "seed": 7,
        "pipeline": {"source": "kafka-transactional", "sink": "postgres-2pc", "profile": "distributed-durable",
                     "checkpoint_interval": "500ms", "workers": 2},
        "workload": {"records": 4000, "rate": 1000, "partitions": 4},
        "faults": [{"kind": "down", "target": "worker-postgres", "after_ready": "1s", "duration": "2s"}],
    })
    assert result.status == "pass", result.summary()
    assert result.verdict("no-loss")["counts"]["lost"] == 0
    assert any(e["event"] == "sink.write_failed" for e in result.history()), "the cut reached the sink's writes"
