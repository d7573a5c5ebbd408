"""The experiment library, run for real against the session's Kafka and Toxiproxy."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


def _events(run, name):
    return [e for e in run.history() if e["event"] == name]


def _offsets(event) -> int:
    """The total source offset a persisted checkpoint records (Kafka sources)."""
    return sum(int(o) for worker in event["positions"].values() for o in worker.values())


def test_quickstart_survives_a_partition_of_the_pipeline_link(run_experiment):
    run = run_experiment(REPO / "experiments" / "quickstart.yaml")
    assert run.code == 0, run.stdout + run.stderr
    assert run.result["status"] == "pass"
    assert run.verdict("no-loss")["counts"]["source_records"] == 20000
    assert run.verdict("no-loss")["counts"]["lost"] == 0
    inject, = _events(run, "fault.inject")
    heal, = _events(run, "fault.heal")
    assert inject["kind"] == "partition" and inject["target"] == "worker-kafka"
    assert heal["ts"] - inject["ts"] == pytest.approx(5.0, abs=0.5)
    progress = [(e["ts"], _offsets(e)) for e in _events(run, "checkpoint.persisted")]
    during = [n for t, n in progress if inject["ts"] + 1.0 < t < heal["ts"]]
    after = [n for t, n in progress if t > heal["ts"] + 1.0]
    # The blackhole really stalls the pipeline: checkpoints go on, but their positions stand still...
    assert len(set(during)) <= 1
    # ...and the pipeline moves again after the heal.
    assert after and max(after) > max(during or [0])
    assert "quickstart: PASS" in run.stdout
    # The progress display ends true: its last render shows every record committed.
    assert re.search(r"committed\s.*\s20000/20000\s", run.stdout), run.stdout
    outcomes = pq.read_table(run.run_dir / "workload.parquet")
    assert outcomes.num_rows == 20000
    assert set(outcomes["status"].to_pylist()) <= {"acked", "failed", "indeterminate"}


def test_link_down_and_latency_recover_without_loss(run_experiment):
    run = run_experiment(REPO / "experiments" / "partition.yaml")
    assert run.code == 0, run.stdout + run.stderr
    kinds = sorted(e["kind"] for e in _events(run, "fault.inject"))
    assert kinds == ["down", "latency"]
    assert len(_events(run, "fault.heal")) == 2
    assert run.verdict("no-loss")["counts"] == {"source_records": 6000, "lost": 0}


def test_kill_and_restart_of_the_pipeline_loses_nothing(run_experiment):
    run = run_experiment(REPO / "experiments" / "kill-restart.yaml")
    assert run.code == 0, run.stdout + run.stderr
    assert run.result["restarts"] == {"coordinator": 0, "worker-0": 1}
    starts = [s for s in _events(run, "process.start") if s["process"] == "worker-0"]
    assert [s["incarnation"] for s in starts] == [1, 2]
    kill, = _events(run, "process.kill")
    assert starts[1]["ts"] - kill["ts"] >= 1.9
    assert run.verdict("no-loss")["counts"]["lost"] == 0




def test_same_seed_gives_the_same_workload(run_experiment):
    first = run_experiment(REPO / "experiments" / "kill-restart.yaml")
    second = run_experiment(REPO / "experiments" / "kill-restart.yaml")
    assert first.run_dir != second.run_dir
    assert first.result["workload_digest"] == second.result["workload_digest"]
    assert first.result["source_digest"] == second.result["source_digest"]


def test_pause_and_terminate_of_the_pipeline_lose_nothing(run_experiment):
    run = run_experiment(REPO / "experiments" / "process-faults.yaml")
    assert run.code == 0, run.stdout + run.stderr
    events = [e["event"] for e in run.history() if e["event"].startswith("process.")]
    assert events.index("process.pause") < events.index("process.resume") < events.index("process.terminate")
    pause, = _events(run, "process.pause")
    resume, = _events(run, "process.resume")
    assert resume["ts"] - pause["ts"] == pytest.approx(3.0, abs=0.5)
    # Frozen means frozen: no checkpoint completes while a worker is stopped.
    assert not [e for e in _events(run, "checkpoint.persisted") if pause["ts"] + 0.5 < e["ts"] < resume["ts"]]
    assert run.result["restarts"]["worker-0"] == 1
    assert run.verdict("no-loss")["counts"] == {"source_records": 6000, "lost": 0}




def test_disk_faults_on_sink_writes_neither_lose_nor_duplicate(run_experiment):
    run = run_experiment(REPO / "experiments" / "disk-faults.yaml")
    assert run.code == 0, run.stdout + run.stderr
    injected = [e for e in _events(run, "fault.inject") if e["kind"] == "disk"]
    assert [e["mode"] for e in injected] == ["eio", "stall"]
    assert run.result["restarts"]["worker-0"] >= 1, "an EIO in the sink must fail the worker over"
    assert run.verdict("duplicates")["counts"]["extra_copies"] == 0
    assert run.verdict("no-loss")["counts"]["lost"] == 0
    assert run.verdict("no-orphans")["status"] == "pass"


def test_the_nemesis_draws_the_same_schedule_from_the_same_seed(run_experiment):
    first = run_experiment(REPO / "experiments" / "nemesis.yaml")
    assert first.code == 0, first.stdout + first.stderr
    second = run_experiment(REPO / "experiments" / "nemesis.yaml")
    schedule = (first.run_dir / "schedule.txt").read_text()
    assert schedule == (second.run_dir / "schedule.txt").read_text()
    assert len(schedule.splitlines()) >= 3, "the nemesis must really schedule faults"
    injected = [e for e in first.history() if e["event"] == "fault.inject"]
    assert len(injected) == len(schedule.splitlines()) - 1
    assert first.verdict("liveness")["status"] == "pass"


def test_faults_fire_on_commit_counts_and_on_crash_points(run_experiment):
    run = run_experiment(REPO / "experiments" / "triggers.yaml")
    assert run.code == 0, run.stdout + run.stderr
    history = run.history()
    crash = next(e for e in history if e["event"] == "crash")
    injects = {e["kind"]: e for e in history if e["event"] == "fault.inject"}
    assert set(injects) == {"partition", "kill", "latency"}
    assert injects["partition"]["ts"] >= crash["ts"]
    commits = [e["ts"] for e in history if e["event"] == "checkpoint.committed"]
    assert len([t for t in commits if t <= injects["kill"]["ts"]]) >= 6
    assert run.verdict("duplicates")["counts"]["extra_copies"] == 0




def test_late_events_are_routed_to_the_side_output_and_survive_a_crash(run_experiment):
    run = run_experiment(REPO / "experiments" / "late-events.yaml")
    assert run.code == 0, run.stdout + run.stderr
    late = run.verdict("late-events")
    assert late["status"] == "pass" and late["counts"]["late"] == 240 and late["counts"]["routed_late"] == 240
    assert run.verdict("no-loss")["counts"]["lost"] == 0
    assert len([e for e in run.history() if e["event"] == "crash"]) == 1




def test_pausing_the_broker_and_the_checkpoint_store_stalls_and_then_resumes(run_experiment):
    run = run_experiment(REPO / "experiments" / "service-faults.yaml")
    assert run.code == 0, run.stdout + run.stderr
    (kafka_in, store_in) = _events(run, "fault.inject")
    (kafka_out, store_out) = _events(run, "fault.heal")
    assert (kafka_in["target"], store_in["target"]) == ("kafka", "postgres")
    persisted = [(e["ts"], _offsets(e)) for e in _events(run, "checkpoint.persisted")]
    # A frozen broker serves no records: the source positions stand still while it is paused...
    assert len({n for t, n in persisted if kafka_in["ts"] + 1.0 < t < kafka_out["ts"]}) <= 1
    # ...and a frozen checkpoint store persists no checkpoint at all.
    assert not [t for t, _ in persisted if store_in["ts"] + 0.5 < t < store_out["ts"]]
    assert run.verdict("duplicates")["counts"]["extra_copies"] == 0
