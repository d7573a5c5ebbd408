"""The corrupt fault on real Parquet files: which file it damages (the sink's oldest, never a source's
input), what a flipped bit and a truncation do to what a reader gets, and where it is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from chaos.experiment.consistency import inconsistencies
from chaos.experiment.models import PipelineSpec
from faults.catalog import CorruptFault
from faults.files import inject, oldest_data_file
from faults.injector import FaultContext

ROWS = pa.table({"id": list(range(200)), "payload": [f"payload-{i:04d}-" + "x" * 40 for i in range(200)],
                 "checksum": list(range(200))})


def write(path: Path, age: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(ROWS, path)
    os.utime(path, ns=(age, age))
    return path


def context(run_dir: Path) -> FaultContext:
    return FaultContext(toxiproxy=None, processes=None, services=None, disk_control=run_dir / "disk.json",  # type: ignore[arg-type]
                        output_dirs=(run_dir / "output", run_dir / "lake"))


def test_the_oldest_output_file_is_damaged_never_an_input_table_nor_a_staged_file(tmp_path):
    write(tmp_path / "lake" / "input-delta" / "input-00000.parquet", age=1)  # the source's, oldest of all
    write(tmp_path / "lake" / "output-delta" / ".pending-c1.parquet", age=2)
    write(tmp_path / "lake" / "output-delta" / "_delta_log" / "x.parquet", age=3)
    first = write(tmp_path / "lake" / "output-delta" / "part-c1-0.parquet", age=4)
    write(tmp_path / "output" / "part-c2-0.parquet", age=5)
    assert oldest_data_file(context(tmp_path).output_dirs) == first
    assert oldest_data_file((tmp_path / "nothing",)) is None


def test_a_truncated_file_cannot_be_read(tmp_path):
    path = write(tmp_path / "output" / "part-c1-0.parquet", age=1)
    size = path.stat().st_size
    heal = inject(CorruptFault(kind="corrupt", mode="truncate", at_commits=1), context(tmp_path))
    heal()  # media do not heal
    assert path.stat().st_size == size // 2
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(path)


def test_a_flipped_bit_changes_what_a_reader_gets_of_the_payload_or_stops_it(tmp_path):
    path = write(tmp_path / "output" / "part-c1-0.parquet", age=1)
    before = path.read_bytes()
    inject(CorruptFault(kind="corrupt", mode="bitflip", at_commits=1), context(tmp_path))
    after = path.read_bytes()
    assert len(after) == len(before) and sum(a != b for a, b in zip(before, after)) == 1
    try:
        read = pq.read_table(path)
    except (OSError, pa.ArrowException):
        return  # the encoding broke: the reader says so
    assert read["payload"] != ROWS["payload"] and read["id"] == ROWS["id"]


def test_no_committed_file_fails_the_injection(tmp_path):
    with pytest.raises(FileNotFoundError, match="no committed data file"):
        inject(CorruptFault(kind="corrupt", mode="truncate", at_commits=1), context(tmp_path))


def test_a_corrupt_fault_lasts_for_good_and_needs_a_sink_that_writes_files():
    with pytest.raises(ValidationError):
        CorruptFault(kind="corrupt", mode="bitflip", at_commits=1, duration=2)
    fault = CorruptFault(kind="corrupt", mode="bitflip", at_commits=1)
    to_kafka = PipelineSpec(source="kafka-transactional", sink="kafka-transactional", profile="distributed-durable")
    problems = inconsistencies(to_kafka, None, [(0, fault)])
    assert [(where, "writes to a service" in why) for where, why in problems] == [(("faults", 0, "kind"), True)]
    to_files = PipelineSpec(source="kafka-transactional", sink="parquet-2pc", profile="distributed-durable")
    assert inconsistencies(to_files, None, [(0, fault)]) == []
