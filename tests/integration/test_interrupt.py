"""An interrupted run says so: Ctrl-C or SIGTERM while a fault is active heals it, stops the pipeline,
and leaves a `result.json` with status interrupted (exit 130), never a violation."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.env.processes import process_start_time
from chaos.runner import recorded_experiment
from drivers.sdk.events import Event
from drivers.sdk.history import read_history
from tests.integration.conftest import REPO
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

EXPERIMENT = """\
name: interrupt-me
seed: 5
pipeline: {source: kafka, sink: parquet, profile: single-node-durable, checkpoint_interval: 1s}
workload: {records: 3000, rate: 150, partitions: 1, payload_size: 16}
faults:
  - {at: 2s, kind: latency, target: worker-kafka, latency_ms: 200, duration: 300s}
expect: {no_loss: true, drain_timeout: 30s}
"""


def _history(runs: Path) -> list[dict]:
    files = list(runs.glob("*/history.jsonl"))
    return read_history(files[0]) if files else []


def _alive(pid: int) -> bool:
    if process_start_time(pid) is None:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_heals_stops_and_records_itself_as_interrupted(environment, tmp_path, sig):
    experiment = tmp_path / "interrupt-me.yaml"
    experiment.write_text(EXPERIMENT)
    runs = tmp_path / "runs"
    state_file = Path(environment.state.workdir) / "state.json"
    # A session of its own, as a CI job's; SIGINT is reset because a shell starts background jobs with it ignored.
    harness = subprocess.Popen(
        [sys.executable, "-m", "chaos", "run", str(experiment), "--env", str(state_file), "--runs-dir", str(runs)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        wait_for(lambda: any(e["event"] == Event.FAULT_INJECT for e in _history(runs)), 180, "the latency fault")
        assert environment.toxiproxy.toxics("worker-kafka"), "the latency toxic should be active"
        harness.send_signal(sig)
        output, _ = harness.communicate(timeout=240)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    (run_dir,) = runs.iterdir()
    assert harness.returncode == 130, output
    assert "Traceback" not in output, output
    assert f"interrupted ({sig.name})" in output and str(run_dir) in output, output

    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "interrupted" and result["interrupted_by"] == sig.name
    assert [(f["index"], f["kind"], f["target"]) for f in result["healed_faults"]] == [(0, "latency", "worker-kafka")]
    assert result["unhealed_faults"] == []
    assert result["verdicts"], result["verdicts_skipped"]
    assert not [v for v in result["verdicts"] if v["status"] == "fail"], result["verdicts"]
    assert (run_dir / "junit.xml").exists() and (run_dir / "report.html").exists()

    assert environment.toxiproxy.toxics("worker-kafka") == []
    pipeline_pids = [e["pid"] for e in read_history(run_dir / "history.jsonl") if e["event"] == Event.PROCESS_START]
    assert pipeline_pids and not any(_alive(p) for p in pipeline_pids)
    assert recorded_experiment(run_dir).name == "interrupt-me"  # `chaos replay` can run it again
    assert environment.health_problem() is None
