"""The guarantee matrix is derived from capability profiles, and reproduces the documented table (docs/guarantees.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chaos import matrix
from chaos.errors import SpecError
from chaos.experiment.loader import parse_experiment
from chaos.matrix import Guarantee
from drivers.connectors import SINKS, SOURCES

REPO = Path(__file__).resolve().parents[2]

# The documented matrix, as (source, sink, weakest allowed profile, guarantee).
SPEC_TABLE = [
    ("parquet-batch", "parquet", "in-memory", "best effort"),
    ("parquet-batch", "parquet-2pc", "distributed-durable", "effectively once"),
    ("kafka", "parquet", "single-node-durable", "at least once"),
    ("kafka-transactional", "parquet-2pc", "distributed-durable", "exactly once"),
    ("kafka-transactional", "kafka-transactional", "distributed-durable", "exactly once"),
    ("kafka-transactional", "iceberg-2pc", "distributed-durable", "exactly once"),
    ("iceberg-batch", "iceberg-batch", "in-memory", "best effort"),
    ("delta-batch", "delta-batch", "in-memory", "best effort"),
    ("delta-batch", "delta-2pc", "distributed-durable", "effectively once"),
    ("hudi-batch", "hudi-2pc", "distributed-durable", "effectively once"),
    ("memory-stream", "memory", "in-memory", "best effort"),
    ("any", "vector", "in-memory", "best effort"),
]


def test_rows_match_spec_and_guarantees_are_derived():
    assert [(r.source, r.sink, r.weakest_profile, r.guarantee.label) for r in matrix.BUILT_IN_ROWS] == SPEC_TABLE
    assert matrix.ROWS[:len(matrix.BUILT_IN_ROWS)] == matrix.BUILT_IN_ROWS


@pytest.mark.parametrize("source,sink,profile,expected", [
    ("kafka", "parquet", "distributed-durable", Guarantee.AT_LEAST_ONCE),
    ("parquet-batch", "parquet", "single-node-durable", Guarantee.AT_LEAST_ONCE),
    ("parquet-batch", "parquet", "in-memory", Guarantee.BEST_EFFORT),
    ("kafka-transactional", "kafka-transactional", "distributed-durable", Guarantee.EXACTLY_ONCE),
    ("delta-batch", "delta-2pc", "distributed-durable", Guarantee.EFFECTIVELY_ONCE),
    ("kafka", "vector", "distributed-durable", Guarantee.BEST_EFFORT),
])
def test_effective_guarantee_is_the_weakest_of_the_three(source, sink, profile, expected):
    row, guarantee = matrix.resolve(source, sink, profile)
    assert guarantee == expected
    assert guarantee == min(matrix.source_guarantee(SOURCES[source].capabilities),
                            matrix.sink_guarantee(SINKS[sink].capabilities), matrix.profile_guarantee(profile))


@pytest.mark.parametrize("source,sink,profile", [
    ("kafka", "parquet", "in-memory"),
    ("kafka", "parquet-2pc", "distributed-durable"),
    ("kafka-transactional", "parquet-2pc", "single-node-durable"),
    ("memory-stream", "parquet", "in-memory"),
])
def test_unsupported_combinations_name_the_nearest_rows(source, sink, profile):
    with pytest.raises(matrix.Unsupported) as info:
        matrix.resolve(source, sink, profile)
    message = str(info.value)
    assert f"{source} -> {sink} with profile {profile} is not a supported combination" in message
    nearest = matrix.nearest_rows(source, sink)
    assert nearest and all(r.describe() in message for r in nearest)
    assert any(r.sink == sink or r.source == source for r in nearest)


def _experiment(source: str, sink: str, profile: str, expect: str = "") -> str:
    return (f"name: m\nseed: 1\npipeline:\n  source: {source}\n  sink: {sink}\n  profile: {profile}\n"
            f"workload:\n  records: 10\n  rate: 10\n{expect}")


def test_spec_rejects_an_unsupported_combination_at_submit():
    with pytest.raises(SpecError) as info:
        parse_experiment(_experiment("kafka", "parquet-2pc", "distributed-durable"), "x.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("line 3: pipeline: kafka -> parquet-2pc")
    assert "nearest supported" in problem


def test_spec_suggests_a_connector_name():
    with pytest.raises(SpecError) as info:
        parse_experiment(_experiment("kafak", "parquet", "single-node-durable"), "x.yaml")
    assert "did you mean 'kafka'?" in info.value.problems[0]


def test_expectations_follow_the_guarantee_unless_stated():
    at_least_once = parse_experiment(_experiment("kafka", "parquet", "single-node-durable"), "x.yaml")
    assert at_least_once.requires_no_loss and not at_least_once.forbids_duplicates
    best_effort = parse_experiment(_experiment("memory-stream", "memory", "in-memory"), "x.yaml")
    assert not best_effort.requires_no_loss and not best_effort.forbids_duplicates
    once = parse_experiment(_experiment("delta-batch", "delta-2pc", "distributed-durable"), "x.yaml")
    assert once.requires_no_loss and once.forbids_duplicates
    stated = parse_experiment(_experiment("kafka", "parquet", "single-node-durable",
                                          "expect:\n  duplicates: forbid\n  no_loss: false\n"), "x.yaml")
    assert stated.forbids_duplicates and not stated.requires_no_loss


def test_run_refuses_an_unsupported_combination_before_starting_anything(tmp_path):
    path = tmp_path / "delta.yaml"
    path.write_text(_experiment("delta-batch", "delta-2pc", "single-node-durable"))
    proc = subprocess.run([sys.executable, "-m", "chaos", "run", str(path), "--runs-dir", str(tmp_path / "runs")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "not a supported combination" in proc.stderr and "delta-batch -> delta-2pc (distributed-durable)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_matrix_command_prints_every_row():
    proc = subprocess.run([sys.executable, "-m", "chaos", "matrix"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    for source, sink, _, guarantee in SPEC_TABLE:
        assert any(source in line and sink in line and guarantee in line for line in proc.stdout.splitlines())
