"""`chaos env up | status | down`, and runs that attach to the shared environment.

It uses its own CHAOS_HOME, with KAFKA_HOME and TOXIPROXY_BIN pointing at the provisioned
binaries, which also covers users who bring their own Kafka and Toxiproxy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chaos.env import install as installer
from chaos.env.processes import process_start_time
from tests.integration.conftest import REPO, chaos_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def own_home(tmp_path: Path) -> dict[str, str]:
    tools = installer.install()
    kafka_home = Path(tools.kafka_classpath.split(":")[0]).parent.parent
    return dict(os.environ, CHAOS_HOME=str(tmp_path / "home"), KAFKA_HOME=str(kafka_home),
                TOXIPROXY_BIN=str(tools.toxiproxy_server))


def test_env_up_is_shared_by_runs_and_env_down_stops_it(own_home, tmp_path):
    state_file = Path(own_home["CHAOS_HOME"]) / "env" / "state.json"
    try:
        up = chaos_cli("env", "up", env=own_home, timeout=180)
        assert up.returncode == 0, up.stderr
        pids = [p["pid"] for p in json.loads(state_file.read_text())["processes"].values()]
        assert chaos_cli("env", "up", env=own_home).stdout.startswith("already up")
        status = chaos_cli("env", "status", env=own_home)
        assert status.returncode == 0 and "worker-kafka" in status.stdout

        runs = tmp_path / "runs"
        run = chaos_cli("run", str(REPO / "experiments" / "kill-restart.yaml"), "--runs-dir", str(runs), env=own_home)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "attached to the environment" in run.stdout
        run_dir = next(runs.glob("kill-restart-*"))
        assert (run_dir / "logs" / "server.log").resolve().is_file()
        assert json.loads((run_dir / "result.json").read_text())["status"] == "pass"
        assert all(process_start_time(p) is not None for p in pids), "a run must not stop the shared environment"
    finally:
        down = chaos_cli("env", "down", env=own_home)
    assert down.returncode == 0
    assert not state_file.exists()
    assert not any(process_start_time(p) is not None for p in pids)
    status = chaos_cli("env", "status", env=own_home)
    assert status.returncode == 3


def test_run_attached_to_an_unreadable_environment_exits_3(tmp_path):
    bogus = tmp_path / "state.json"
    bogus.write_text("{}")
    proc = chaos_cli("run", str(REPO / "experiments" / "quickstart.yaml"), "--env", str(bogus),
                     "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 3
    assert "cannot read environment state" in proc.stderr
    assert "Traceback" not in proc.stderr
