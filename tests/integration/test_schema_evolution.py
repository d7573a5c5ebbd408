"""Columns added, dropped and widened mid-stream, through every sink that takes a schema change from
the workload, with a worker crash in the middle; and a sink that truncates the widened column."""

from __future__ import annotations

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

EXPERIMENTS = sorted((REPO / "experiments" / "schema-evolution").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_record_reads_under_the_final_schema_with_its_values(run_experiment, path):
    run = run_experiment(path)
    assert run.code == 0, run.stdout + run.stderr
    schema = run.verdict("schema-compatibility")
    assert schema["status"] == "pass"
    assert schema["counts"]["columns"] == 3 and schema["counts"]["wrong_records"] == 0
    assert run.verdict("no-loss")["counts"]["lost"] == 0
    assert len([e for e in run.history() if e["event"] == "crash"]) == 1


def test_the_schema_checker_catches_a_sink_that_truncates_a_widened_column(run_experiment):
    run = run_experiment(REPO / "experiments" / "mutants" / "truncating-widen.yaml")
    assert run.code == 1, run.stdout + run.stderr
    schema = run.verdict("schema-compatibility")
    assert schema["status"] == "fail"
    assert schema["counts"]["wrong_score"] == 1500 and schema["examples"][0] == 1500
