"""Runs of variants of one experiment, one after another on one environment: what `chaos explore`
and `chaos shrink` are made of.

Each variant is written to a YAML file and run by `run_file`, as a user would run it, so that any
of them can be rerun by hand. A run is judged by its *signature*: the set of invariants that failed.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from rich.console import Console

from chaos.env.acquire import acquire_environment
from chaos.errors import ChaosError, SpecError
from chaos.experiment import Experiment, dump_experiment
from chaos.report.result import Outcome
from chaos.runner import run_file
from faults.catalog import Fault

STATUS = {Outcome.PASS: "pass", Outcome.VIOLATION: "fail", Outcome.INCONCLUSIVE: "inconclusive"}
"""A run's status in explore and shrink: pass, fail, inconclusive; or error (the environment failed)
and invalid (the variant is not a valid experiment), which no run reached."""


@dataclass
class Trial:
    label: str
    experiment_file: Path
    status: str
    failed: tuple[str, ...] = ()
    run_dir: Path | None = None
    seconds: float = 0.0
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    """What the command adds of its own: the nemesis seed, the schedule's digest."""

    @property
    def signature(self) -> frozenset[str]:
        """The invariants that failed: a failure "reproduces" only with the same set."""
        return frozenset(self.failed)

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, **self.details, "status": self.status, "failed": list(self.failed),
                "run_dir": str(self.run_dir) if self.run_dir else None, "experiment": str(self.experiment_file),
                "seconds": round(self.seconds, 1), "message": self.message}


def canonical_digest(experiment: Experiment) -> str:
    """The same pipeline, workload, schedule and expectations give the same digest, whatever the
    experiment is called: the key under which a shrink caches what a candidate did."""
    body = experiment.model_dump(mode="json", exclude_none=True, exclude={"name", "description"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def schedule_digest(faults: Sequence[Fault]) -> str:
    """A short fingerprint of a concrete fault schedule, to tell two draws apart at a glance."""
    body = [fault.model_dump(mode="json", exclude_none=True) for fault in faults]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


class Trials:
    """Runs experiments on the environment in `state_file`, each in a run directory of its own
    under `directory`, with its console output in `directory/logs`."""

    def __init__(self, directory: Path, state_file: Path):
        self.directory = directory
        self.state_file = state_file
        for sub in ("experiments", "runs", "logs"):
            (directory / sub).mkdir(parents=True, exist_ok=True)

    def run(self, experiment: Experiment, label: str) -> Trial:
        path = self.directory / "experiments" / f"{label}.yaml"
        path.write_text(dump_experiment(experiment))
        started = time.monotonic()
        with (self.directory / "logs" / f"{label}.log").open("w") as out:
            quiet = Console(file=out, width=120, soft_wrap=True)
            try:
                result = run_file(path, self.directory / "runs", self.state_file, False, quiet)
            except SpecError as e:
                return Trial(label, path, "invalid", message="; ".join(e.problems))
            except ChaosError as e:
                quiet.print(f"error: {e}", markup=False)
                return Trial(label, path, "error", seconds=time.monotonic() - started, message=str(e))
        failed = tuple(v.invariant for v in result.verdicts if v.failed)
        inconclusive = "; ".join(f"{v.invariant}: {v.summary}" for v in result.verdicts if v.inconclusive)
        return Trial(label, path, STATUS[result.status], failed, result.run_dir, time.monotonic() - started,
                     inconclusive if result.status == Outcome.INCONCLUSIVE else "")


@contextmanager
def open_trials(directory: Path, experiment: Experiment, env_file: Path | None, private: bool, keep_env: bool,
                console: Console) -> Iterator[Trials]:
    """Trials on one environment for the whole command: the shared one, or a private one that is
    stopped when the command ends."""
    with ExitStack() as stack:
        env = acquire_environment(None if private else env_file, private,
                                  experiment.pipeline.profile == "distributed-durable", directory / "env", stack,
                                  console, keep_env)
        yield Trials(directory, Path(env.state.workdir) / "state.json")
