"""Every runnable matrix row, end to end from YAML, keeping its guarantee through crashes.

Each row's experiment arms a crash point, and every row is also run with a worker killed mid-run.
The certification suite crashes each two-phase row's coordinator at the three points of scenario 4;
here one row per checkpoint store (PostgreSQL, SQLite, in-memory) crashes its coordinator at every
coordinator point, and must restore exactly the last checkpoint persisted before the crash.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaos.experiment import load_experiment
from chaos.matrix import Guarantee
from drivers.sdk.crashpoints import POINTS
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

ROWS = sorted((REPO / "experiments" / "rows").glob("*.yaml"))
COORDINATOR_POINTS = [p for p in POINTS if p.startswith("coordinator.")]
ONE_ROW_PER_STORE = [REPO / "experiments" / "rows" / f"{name}.yaml" for name in
                     ("kafka-transactional-to-parquet-2pc", "kafka-to-parquet", "memory-to-memory")]


def _assert_guarantee(run, path: Path) -> None:
    assert run.code == 0, run.stdout + run.stderr
    guarantee = load_experiment(path).pipeline.guarantee
    loss, dups = run.verdict("no-loss"), run.verdict("duplicates")
    if guarantee >= Guarantee.AT_LEAST_ONCE:
        assert loss["status"] == "pass" and loss["counts"]["lost"] == 0
    if guarantee >= Guarantee.EFFECTIVELY_ONCE:
        assert dups["status"] == "pass" and dups["counts"]["extra_copies"] == 0
    assert run.verdict("no-phantoms")["status"] == "pass"
    assert run.verdict("drained")["status"] == "pass"


def _variant(path: Path, tmp_path: Path, faults: list[dict]) -> Path:
    spec = yaml.safe_load(path.read_text())
    spec["faults"] = faults
    out = tmp_path / path.name
    out.write_text(yaml.safe_dump(spec))
    return out


def _crashes(run) -> list[dict]:
    return [e for e in run.history() if e["event"] == "crash"]


@pytest.mark.parametrize("path", ROWS, ids=lambda p: p.stem)
def test_row_keeps_its_guarantee_through_its_crash_point(run_experiment, path):
    run = run_experiment(path)
    _assert_guarantee(run, path)
    crashes = _crashes(run)
    assert len(crashes) == 1, "the armed crash point must really fire"
    assert sum(run.result["restarts"].values()) >= 1


@pytest.mark.parametrize("point", COORDINATOR_POINTS)
@pytest.mark.parametrize("path", ONE_ROW_PER_STORE, ids=lambda p: p.stem)
def test_row_survives_a_coordinator_crash_at(run_experiment, tmp_path, path, point):
    run = run_experiment(_variant(path, tmp_path, [{"kind": "crash", "point": point, "hit": 2}]))
    _assert_guarantee(run, path)
    (crash,) = _crashes(run)
    assert crash["point"] == point and crash["process"] == "coordinator"
    assert run.result["restarts"]["coordinator"] == 1
    restored = [e for e in run.history() if e["event"] == "coordinator.start"][-1]["restored"]
    persisted_before = [e["checkpoint_id"] for e in run.history()
                        if e["event"] == "checkpoint.persisted" and e["ts"] < crash["ts"]]
    if load_experiment(path).pipeline.profile == "in-memory":
        assert restored is None, "an in-memory checkpoint store dies with the coordinator"
    else:
        # Recovery resumes from the last checkpoint persisted before the crash, whatever the point.
        assert restored == max(persisted_before)


@pytest.mark.parametrize("path", ROWS, ids=lambda p: p.stem)
def test_row_keeps_its_guarantee_when_a_worker_is_killed(run_experiment, tmp_path, path):
    run = run_experiment(_variant(path, tmp_path, [{"kind": "kill", "target": "worker-0", "after_ready": 0.5,
                                                            "duration": 1}]))
    _assert_guarantee(run, path)
    assert run.result["restarts"]["worker-0"] == 1


@pytest.mark.parametrize("row,fault", [
    ("kafka-transactional-to-parquet-2pc", {"kind": "down", "target": "worker-coordinator", "after_ready": 1,
                                            "duration": 12}),
    ("kafka-transactional-to-parquet-2pc", {"kind": "partition", "target": "coordinator-store", "after_ready": 1,
                                            "duration": 4}),
    ("kafka-transactional-to-parquet-2pc", {"kind": "partition", "target": "worker-kafka", "after_ready": 1,
                                            "duration": 4}),
    ("kafka-transactional-to-iceberg-2pc", {"kind": "partition", "target": "worker-catalog", "after_ready": 0.5,
                                            "duration": 4}),
], ids=lambda v: v if isinstance(v, str) else f"{v['kind']}-{v['target']}")
def test_exactly_once_row_survives_a_link_fault(run_experiment, tmp_path, row, fault):
    path = REPO / "experiments" / "rows" / f"{row}.yaml"
    run = run_experiment(_variant(path, tmp_path, [fault]))
    _assert_guarantee(run, path)
    events = [e["event"] for e in run.history()]
    assert events.count("fault.inject") == 1 and events.count("fault.heal") == 1
    if fault["duration"] > 10:
        # Longer than the heartbeat timeout: the workers fail over and restore from the last checkpoint.
        assert "worker.coordinator_lost" in events
        assert sum(run.result["restarts"].values()) >= 1
