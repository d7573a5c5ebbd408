"""A pytest plugin for connector teams: real services for the test session, and experiments as tests.

Installed with the testbed and registered through the `pytest11` entry point, so a connector's own
repository gets two fixtures without any conftest:

- `chaos_env`: the session's environment (Kafka, Toxiproxy and PostgreSQL, on 127.0.0.1), started
  once and stopped at the end; or, with `--chaos-env STATE` (or `CHAOS_ENV=STATE`), an environment
  that is already up (`chaos env up`), attached to and left running.
- `run_experiment(path_or_dict)`: runs one experiment against it, as `chaos run` would, and
  returns an `ExperimentResult` (its status, exit code, verdicts and run directory). A dict is an
  experiment document, written to the test's temporary directory first.

    def test_my_sink_survives_a_coordinator_crash(run_experiment):
        result = run_experiment("experiments/my-sink-2pc.yaml")
        assert result.status == "pass", result.summary()
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from rich.console import Console

from chaos.env.environment import Environment


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("chaos").addoption(
        "--chaos-env", default=os.environ.get("CHAOS_ENV"), metavar="STATE",
        help="attach to the chaos environment in this state file instead of starting one (default: $CHAOS_ENV)")


@dataclass(frozen=True)
class ExperimentResult:
    run_dir: Path
    status: str
    """pass, violation, inconclusive (the experiment did not do what it said) or invalid."""
    exit_code: int
    verdicts: list[dict[str, Any]]

    def verdict(self, invariant: str) -> dict[str, Any]:
        return next(v for v in self.verdicts if v["invariant"] == invariant)

    def history(self) -> list[dict[str, Any]]:
        from drivers.sdk.history import read_history

        return read_history(self.run_dir / "history.jsonl")

    def summary(self) -> str:
        """Every verdict on one line each, for an assertion message."""
        return "\n".join(f"{v['invariant']}: {v['status']}: {v['summary']}" for v in self.verdicts) + \
            f"\nrun directory: {self.run_dir}"


@pytest.fixture(scope="session")
def chaos_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    state = request.config.getoption("--chaos-env")
    if state:
        yield Environment.attach(Path(state))
        return
    env = Environment.start(tmp_path_factory.mktemp("chaos-env"), with_postgres=True)
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture
def run_experiment(chaos_env: Environment, tmp_path: Path) -> Callable[[str | Path | dict[str, Any]], ExperimentResult]:
    from chaos.runner import run_file

    state_file = Path(chaos_env.state.workdir) / "state.json"

    def run(experiment: str | Path | dict[str, Any]) -> ExperimentResult:
        if isinstance(experiment, dict):
            path = tmp_path / f"{experiment.get('name', 'experiment')}.yaml"
            path.write_text(yaml.safe_dump(experiment, sort_keys=False))
        else:
            path = Path(experiment)
        quiet = Console(file=io.StringIO(), width=120)
        result = run_file(path, tmp_path / "runs", state_file, False, quiet)
        recorded = json.loads((result.run_dir / "result.json").read_text())
        return ExperimentResult(result.run_dir, recorded["status"], result.exit_code, recorded["verdicts"])

    return run
