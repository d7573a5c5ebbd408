"""Process hygiene: no orphans after a harness crash, and Ctrl-C heals faults and stops everything."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.env.processes import process_start_time
from tests.integration.conftest import REPO
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _start_run(experiment: Path, runs: Path, *extra: str) -> subprocess.Popen[str]:
    # Ctrl-C must reach the harness as it would from a terminal, even when this test itself runs in
    # the background (a shell starts background jobs with SIGINT ignored, and children inherit that).
    return subprocess.Popen([sys.executable, "-m", "chaos", "run", str(experiment), "--runs-dir", str(runs), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _history(runs: Path) -> list[dict]:
    files = list(runs.glob("*/history.jsonl"))
    if not files:
        return []
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.endswith("}")]


def _alive(pid: int) -> bool:
    return process_start_time(pid) is not None and not Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"


def test_a_killed_harness_leaves_no_orphans(tmp_path):
    runs = tmp_path / "runs"
    harness = _start_run(REPO / "experiments" / "kill-restart.yaml", runs, "--private-env")
    try:
        wait_for(lambda: sum(e["event"] == "process.start" for e in _history(runs)) == 2, 120,
                  "the coordinator and the worker to start")
        state = json.loads(next(runs.glob("*/env/state.json")).read_text())
        pids = [p["pid"] for p in state["processes"].values()]
        pids += [e["pid"] for e in _history(runs) if e["event"] == "process.start"]
        assert len(pids) == 4 and all(_alive(p) for p in pids)  # kafka, toxiproxy, coordinator, worker-0
        harness.send_signal(signal.SIGKILL)
        harness.wait(10)
        wait_for(lambda: not any(_alive(p) for p in pids), 15, "every child to die with the harness")
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()


def test_ctrl_c_heals_the_active_fault_and_stops_the_pipeline(environment, tmp_path):
    runs = tmp_path / "runs"
    state_file = Path(environment.state.workdir) / "state.json"
    harness = _start_run(REPO / "experiments" / "quickstart.yaml", runs, "--env", str(state_file))
    try:
        wait_for(lambda: any(e["event"] == "fault.inject" for e in _history(runs)), 120, "the partition")
        assert environment.toxiproxy.toxics("worker-kafka"), "the partition toxic should be active"
        harness.send_signal(signal.SIGINT)
        output, _ = harness.communicate(timeout=60)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    assert harness.returncode == 130, output
    assert "Traceback" not in output
    assert "interrupted" in output
    events = _history(runs)
    assert any(e["event"] == "fault.heal" for e in events)
    assert environment.toxiproxy.toxics("worker-kafka") == []
    pipeline_pids = [e["pid"] for e in events if e["event"] == "process.start"]
    assert pipeline_pids and not any(_alive(p) for p in pipeline_pids)
    assert environment.health_problem() is None, "the shared environment must survive a run's Ctrl-C"


def test_missing_java_is_reported_with_exit_3(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "CHAOS_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "chaos", "env", "install"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert "`java` was not found" in proc.stderr and "Install" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_maven_is_reported_with_exit_3(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = subprocess.run(["which", "java"], capture_output=True, text=True).stdout.strip()
    (bin_dir / "java").symlink_to(java)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "CHAOS_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "chaos", "env", "install"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert "`mvn` was not found" in proc.stderr
    assert "KAFKA_HOME" in proc.stderr


def test_a_pipeline_that_cannot_start_is_an_environment_failure_not_a_violation(environment, tmp_path):
    """Every pipeline process dies at interpreter start-up (an unknown I/O encoding, inherited from
    the harness): the run ends with exit 3 naming the process and its log, and judges nothing."""
    experiment = tmp_path / "cannot-start.yaml"
    experiment.write_text(
        "name: cannot-start\nseed: 1\n"
        "pipeline: {source: kafka, sink: parquet, restart_delay: 0.2s}\n"
        "workload: {records: 4000, rate: 400}\n")
    runs = tmp_path / "runs"
    state_file = Path(environment.state.workdir) / "state.json"
    harness = ("import os, sys; os.environ['PYTHONIOENCODING'] = 'no-such-codec';"
               "from chaos.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", harness, "run", str(experiment), "--env", str(state_file),
                           "--runs-dir", str(runs)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "could not start" in proc.stderr and "before it was ever ready" in proc.stderr
    assert "no-such-codec" in proc.stderr, "the log tail of the process that could not start"
    assert "Traceback" not in proc.stderr
    (run_dir,) = runs.glob("cannot-start-*")
    assert not (run_dir / "result.json").exists(), "no verdict on a pipeline that never ran"
    assert any(e["event"] == "process.crash_loop" for e in _history(runs))
