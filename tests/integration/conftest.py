"""One real environment (Kafka in KRaft mode and Toxiproxy) for the whole test session.

Experiments attach to it through its state file, and each resets topics and proxies first,
exactly as a suite sharing `chaos env up` does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from chaos.env.environment import Environment
from faults.injector import FaultContext

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def environment(chaos_env: Environment) -> Environment:
    """The session's environment, from the testbed's own pytest plugin (`chaos.pytest_plugin`), as a
    connector team's tests get it."""
    return chaos_env


def links_only(environment: Environment) -> FaultContext:
    """A fault context for network faults alone: the environment's Toxiproxy, and no processes."""
    return FaultContext(toxiproxy=environment.toxiproxy, processes=None, services=None,  # type: ignore[arg-type]
                        disk_control=Path("/nonexistent"))


@dataclass
class ChaosRun:
    code: int
    stdout: str
    stderr: str
    run_dir: Path | None

    @property
    def result(self) -> dict[str, Any]:
        assert self.run_dir is not None, self.stderr
        return json.loads((self.run_dir / "result.json").read_text())

    def verdict(self, invariant: str) -> dict[str, Any]:
        return next(v for v in self.result["verdicts"] if v["invariant"] == invariant)

    def history(self) -> list[dict[str, Any]]:
        assert self.run_dir is not None
        return [json.loads(line) for line in (self.run_dir / "history.jsonl").read_text().splitlines()]


def chaos_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env or dict(os.environ), stdin=subprocess.DEVNULL)


@pytest.fixture
def run_experiment(environment: Environment, tmp_path: Path):
    """Run `chaos run FILE` against the session's environment, in its own runs directory."""
    state_file = Path(environment.state.workdir) / "state.json"

    def run(experiment: str | Path) -> ChaosRun:
        runs = tmp_path / "runs"
        proc = chaos_cli("run", str(experiment), "--env", str(state_file), "--runs-dir", str(runs))
        dirs = sorted(runs.glob("*")) if runs.exists() else []
        return ChaosRun(proc.returncode, proc.stdout, proc.stderr, dirs[-1] if dirs else None)

    return run


LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def log_time(line: str) -> float | None:
    """When a Kafka log line says it was written (by the broker's own clock), or None for a line without a stamp."""
    stamp = LOG_TIME.match(line)
    return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if stamp else None


def clock_steps(server_log: Path) -> list[float]:
    """Every step between two consecutive timestamps of the broker's log larger than a minute,
    forward or back: what a moved clock leaves in the lines the broker dates by it."""
    times = [time for line in server_log.read_text(errors="replace").splitlines()
             if (time := log_time(line)) is not None]
    return [later - earlier for earlier, later in zip(times, times[1:]) if abs(later - earlier) > 60]
