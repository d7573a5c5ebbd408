"""The kafka-connect engine against real services: Connect workers in distributed mode, provisioned
from Maven Central, running the Apache Iceberg sink as a black box; the harness reads its table
with pyiceberg from the JDBC catalog in PostgreSQL and judges it like any other sink."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from drivers.sdk.events import Event
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

EXPERIMENT = REPO / "experiments" / "engines" / "kafka-connect-iceberg.yaml"


def test_a_connect_pipeline_delivers_every_record_once_and_is_watched_from_outside(run_experiment,
                                                                                   tmp_path: Path) -> None:
    document = yaml.safe_load(EXPERIMENT.read_text())
    del document["faults"]
    quiet = tmp_path / "kafka-connect-quiet.yaml"
    quiet.write_text(yaml.safe_dump(document, sort_keys=False))
    run = run_experiment(quiet)
    assert run.code == 0, run.stdout + run.stderr
    events = [e["event"] for e in run.history()]
    assert events.count(Event.ENGINE_WORKER_READY) == 2 and Event.ENGINE_CONNECTOR_CREATED in events
    assert events.count(Event.ENGINE_COMMIT_SEEN) >= 2, "the commits are seen as they land, not once at the end"
    assert run.verdict("no-loss")["counts"]["lost"] == 0
    assert run.verdict("duplicates")["counts"]["extra_copies"] == 0
    visibility = run.verdict("atomic-visibility")
    assert visibility["status"] == "pass" and visibility["counts"]["commits"] >= 2, visibility
    connector = yaml.safe_load((run.run_dir / "resolved.json").read_text())["job"]["connector"]
    assert connector["config"]["connector.class"] == "org.apache.iceberg.connect.IcebergSinkConnector"
