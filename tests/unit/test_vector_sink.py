"""Vector sink (Experimental, best effort): rows and embeddings in an embedded LanceDB, read back
only with LanceDB's own reader."""

from __future__ import annotations

import math
from pathlib import Path

import lancedb
import pyarrow as pa
import pytest

from chaos.checkers.duplicates import check_duplicates
from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import SCHEMA, expected_table
from chaos.sides.vector import read_vectors
from drivers.vector import DIM, VectorSink, embed
from tests.unit.crashes import Crash

TABLE = "vectors"


def workload(records: int = 40) -> pa.Table:
    return expected_table(WorkloadSpec(records=records, rate=1000, keys=5, payload_size=24), seed=3)


def sink(path: Path, crash: Crash | None = None) -> VectorSink:
    return VectorSink(path, TABLE, job_id="job", worker=0, crash=crash or Crash())


def lance_table(path: Path) -> lancedb.table.Table:
    return lancedb.connect(str(path)).open_table(TABLE)


def test_embed_is_deterministic_unit_and_payload_dependent() -> None:
    assert embed("abc") == embed("abc")
    assert embed("abc") != embed("abd")
    assert len(embed("abc")) == DIM and len(embed("abc", dim=70)) == 70
    assert embed("abc", dim=70)[:32] != embed("abc", dim=70)[32:64]
    for dim in (1, DIM, 70):
        assert math.isclose(math.fsum(v * v for v in embed("abc", dim)), 1.0, rel_tol=1e-12)
        assert all(-1.0 <= v <= 1.0 for v in embed("abc", dim))
    with pytest.raises(ValueError):
        embed("abc", dim=0)


def test_rows_are_visible_at_prepare_with_their_vectors(tmp_path: Path) -> None:
    expected = workload()
    crash = Crash()
    s = sink(tmp_path / "db", crash)
    assert read_vectors(tmp_path / "db", TABLE).equals(SCHEMA.empty_table())
    assert not (tmp_path / "db").exists()
    s.write(expected.slice(0, 25))
    s.write(expected.slice(25))
    assert read_vectors(tmp_path / "db", TABLE).num_rows == 0
    handle = s.prepare(1)
    assert crash.points == ["sink.prepare.before", "sink.prepare.after"]
    assert handle.sink == "vector" and handle.checkpoint_id == 1 and handle.payload["rows"] == 40

    got = read_vectors(tmp_path / "db", TABLE).sort_by("id")
    assert got.schema.names == SCHEMA.names + ["vector"]
    assert got.schema.field("vector").type == pa.list_(pa.float32(), DIM)
    assert got.select(SCHEMA.names).cast(SCHEMA).equals(expected)
    recomputed = pa.array([embed(p) for p in got["payload"].to_pylist()], pa.list_(pa.float32(), DIM))
    assert got["vector"].combine_chunks().equals(recomputed)

    s.commit(handle)
    s.commit(handle)
    assert read_vectors(tmp_path / "db", TABLE).num_rows == 40
    assert s.prepare(2).payload["rows"] == 0
    assert lance_table(tmp_path / "db").count_rows() == 40
    s.close()


def test_a_second_sink_appends_to_the_existing_table(tmp_path: Path) -> None:
    expected = workload()
    for worker, part in enumerate((expected.slice(0, 10), expected.slice(10))):
        s = VectorSink(tmp_path / "db", TABLE, job_id="job", worker=worker, crash=Crash())
        s.write(part)
        s.prepare(1)
        s.close()
    got = read_vectors(tmp_path / "db", TABLE).sort_by("id")
    assert got.select(SCHEMA.names).cast(SCHEMA).equals(expected)
    assert read_vectors(tmp_path / "db", "no-such-table").equals(SCHEMA.empty_table())


def test_nearest_neighbour_finds_the_row_of_each_payload(tmp_path: Path) -> None:
    expected = workload()
    s = sink(tmp_path / "db")
    s.write(expected)
    s.prepare(1)
    table = lance_table(tmp_path / "db")
    for row in expected.slice(0, 10).to_pylist():
        hit = table.search(embed(row["payload"])).limit(1).to_arrow()
        assert hit.num_rows == 1
        assert hit["id"][0].as_py() == row["id"] and hit["payload"][0].as_py() == row["payload"]
        assert hit["_distance"][0].as_py() == pytest.approx(0.0, abs=1e-6)


def test_replay_after_a_crash_at_prepare_after_duplicates_and_the_check_detects_it(tmp_path: Path) -> None:
    expected = workload(20)
    first = sink(tmp_path / "db", Crash("sink.prepare.after"))
    first.write(expected)
    with pytest.raises(RuntimeError, match="sink.prepare.after"):
        first.prepare(1)
    # The checkpoint never persisted, so the restarted worker recovers with nothing and replays.
    second = sink(tmp_path / "db")
    second.recover([])
    second.write(expected)
    second.prepare(1)

    output = lance_table(tmp_path / "db").to_arrow()
    assert output.num_rows == 40
    verdict = check_duplicates(output, forbidden=False)
    assert verdict.status == "info"
    assert verdict.counts == {"output_records": 40, "duplicated_ids": 20, "extra_copies": 20}
    assert check_duplicates(output, forbidden=True).failed
    assert output.select(SCHEMA.names).cast(SCHEMA).sort_by("id").equals(
        pa.concat_tables([expected, expected]).sort_by("id"))
