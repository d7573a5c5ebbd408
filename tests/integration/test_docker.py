"""The Docker backend against a real Docker engine, with images built here from Debian's packages and
our own Kafka jars and Toxiproxy binary (no registry is reachable).

When no engine runs, the module starts `dockerd` itself (installing Debian's docker.io if missing)
and stops it at the end. Each test has a CHAOS_HOME of its own, so it never meets the shared native
environment; the last one counts what the runs left on the engine: nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from chaos.env.compose import CONTAINERS
from chaos.env.containers import OWNER_LABEL, leftover_containers, remove_exited_containers
from chaos.env.docker_engine import compose_command, engine, running_engine
from chaos.env.docker_images import VARIABLES, build_local_images
from tests.integration.conftest import REPO, chaos_cli
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

QUICKSTART = REPO / "experiments" / "quickstart.yaml"
EXACTLY_ONCE = REPO / "experiments" / "docker" / "exactly-once.yaml"
COMPOSE = REPO / "compose"


@dataclass(frozen=True)
class Engine:
    images: dict[str, str]
    """The local images, by service."""
    volumes: list[str]
    networks: list[str]
    """What the engine held before the module's runs: the last test compares."""


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The local images, on the running engine or on one started for the module."""
    with running_engine(tmp_path_factory.mktemp("dockerd")):
        images = build_local_images()
        client = engine()
        remove_exited_containers()  # a pytest killed mid-module leaves its (stopped) containers
        assert leftover_containers() == [], "a live environment's containers are here: `chaos env down` first"
        yield Engine(images, sorted(v.name for v in client.volumes.list()),
                     sorted(n.name for n in client.networks.list()))


def _cli_env(home: Path, images: dict[str, str]) -> dict[str, str]:
    return dict(os.environ, CHAOS_HOME=str(home), **{VARIABLES[service]: image for service, image in images.items()})


def _result(runs: Path) -> dict:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return json.loads((run_dir / "result.json").read_text())


def _verdicts(result: dict) -> dict[str, str]:
    return {v["invariant"]: v["status"] for v in result["verdicts"]}


def _run_exactly_once(runs: Path, env: dict[str, str], *options: str) -> subprocess.CompletedProcess:
    """`chaos run` of the exactly-once row, which must pass with its faults applied."""
    run = chaos_cli("run", str(EXACTLY_ONCE), "--runs-dir", str(runs), *options, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    result = _result(runs)
    verdicts = _verdicts(result)
    assert result["status"] == "pass", verdicts
    assert verdicts["no-loss"] == verdicts["duplicates"] == verdicts["faults-applied"] == "pass"
    return run


def _ours(owner: str) -> list:
    return engine().containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}"})


def test_env_up_on_docker_runs_the_quickstart_and_env_down_removes_its_containers(docker: Engine, tmp_path: Path):
    env = _cli_env(tmp_path / "home", docker.images)
    up = chaos_cli("env", "up", "--backend", "docker", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((tmp_path / "home" / "env" / "state.json").read_text())
    try:
        assert state["backend"] == "docker" and state["images"] == docker.images
        running = {c.labels[OWNER_LABEL]: c for c in _ours(state["workdir"])}
        assert len(_ours(state["workdir"])) == 3 and set(running) == {state["workdir"]}
        assert {c.image.tags[0] for c in _ours(state["workdir"])} == set(docker.images.values())
        assert all(p["container"] for p in state["processes"].values())
        # The quickstart names no backend: it attaches to the shared environment, here Docker's.
        run = chaos_cli("run", str(QUICKSTART), "--runs-dir", str(tmp_path / "runs"), env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "attached to the environment" in run.stdout
        result = _result(tmp_path / "runs")
        assert result["status"] == "pass", _verdicts(result)
        assert _verdicts(result)["no-loss"] == "pass" and _verdicts(result)["faults-met-traffic"] == "pass"
    finally:
        down = chaos_cli("env", "down", env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert _ours(state["workdir"]) == []
    # Each container's output was saved to its log before the container went.
    assert "Kafka Server started" in (Path(state["workdir"]) / "logs" / "server.log").read_text()
    assert (Path(state["workdir"]) / "logs" / "toxiproxy.log").read_text().strip()


def test_the_exactly_once_row_survives_a_cut_a_pause_and_a_broker_kill_on_docker(docker: Engine, tmp_path: Path):
    env = _cli_env(tmp_path / "home", docker.images)
    run = _run_exactly_once(tmp_path / "runs", env)
    assert "starting a private environment" in run.stdout
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    workdir = run_dir / "env"
    # The kill's heal started the broker's container again, on the same mounted log directories.
    server_log = (workdir / "logs" / "server.log").read_text()
    assert len(re.findall(r"Kafka Server started", server_log)) == 2, server_log[-2000:]
    assert _ours(str(workdir)) == []


def test_a_sigkilled_harness_s_private_containers_are_removed_by_its_reaper(docker: Engine, tmp_path: Path):
    """A container does not die with its harness, as a child process does: the private environment's
    reaper, in a session of its own, removes them once the harness (its whole process group) is
    SIGKILLed mid-run."""
    runs = tmp_path / "runs"
    harness = subprocess.Popen([sys.executable, "-m", "chaos", "run", str(EXACTLY_ONCE), "--runs-dir", str(runs)],
                               cwd=REPO, env=_cli_env(tmp_path / "home", docker.images), start_new_session=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        owner = str(wait_for(lambda: next(runs.glob("*/env"), None), 120, "the run's private environment"))
        wait_for(lambda: len([c for c in _ours(owner) if c.status == "running"]) == 3, 120, "its three containers")
    finally:
        os.killpg(harness.pid, signal.SIGKILL)
        harness.wait(30)
    wait_for(lambda: _ours(owner) == [], 90, "the reaper to remove the containers", interval=0.5)
    assert "removed 3 container(s)" in (Path(owner) / "logs" / "reaper.log").read_text()


def test_the_compose_folder_comes_up_and_a_run_attaches_to_it_with_every_fault(docker: Engine, tmp_path: Path):
    """`compose/` brought up by Docker Compose, as a user would (a copy, so that its logs stay out of
    the checkout), and the exactly-once row attached to it through the folder's state file: the
    link cut at its Toxiproxy, its PostgreSQL paused, its broker killed and started again."""
    folder = tmp_path / "compose"
    shutil.copytree(COMPOSE, folder)
    compose = [*compose_command(), "--project-name", "chaos-compose-test", "--file", str(folder / "docker-compose.yml")]
    env = _cli_env(tmp_path / "home", docker.images)
    up = subprocess.run([*compose, "up", "--detach"], env=env, capture_output=True, text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        run = _run_exactly_once(tmp_path / "runs", env, "--env", str(folder / "state.json"))
        assert "attached to the environment" in run.stdout
        # The kill's heal started the same container again: its log, in the folder's logs/, shows two starts.
        assert (folder / "logs" / "server.log").read_text().count("Kafka Server started") == 2
        names = {c.name for c in engine().containers.list(all=True)}
        assert set(CONTAINERS.values()) <= names
    finally:
        down = subprocess.run([*compose, "down", "--volumes"], env=env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not {c.name for c in engine().containers.list(all=True)} & set(CONTAINERS.values())


def test_nothing_of_ours_remains_on_the_engine(docker: Engine):
    client = engine()
    assert leftover_containers() == []
    assert sorted(v.name for v in client.volumes.list()) == docker.volumes
    assert sorted(n.name for n in client.networks.list()) == docker.networks
