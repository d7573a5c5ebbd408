"""The native engine: our runtime's coordinator and workers (`drivers.runtime`), one process each.

The workers reach the coordinator through the `worker-coordinator` link; the coordinator binds a
port of its own and says which when it is ready, and only then does the link lead there. The
job's configuration is `job.json`; the coordinator writes its last committed checkpoint to
`job-status.json`.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from chaos.engines.base import Factory, Status
from chaos.env.clock_shim import clock_env
from chaos.env.processes import ManagedProcess
from chaos.sides.base import RunContext, SinkSide, SourceSide
from drivers.runtime.config import JobConfig
from drivers.sdk.events import Event
from drivers.sdk.history import TRUE_EPOCH, true_epoch
from faults.clock import clock_targets

NOWHERE = 1
"""tcpmux's port, where nothing listens: a link pointed here refuses every connection at once."""
REPO = Path(__file__).resolve().parent.parent.parent


class NativeEngine:
    def __init__(self, context: RunContext, source: SourceSide, sink: SinkSide):
        self.context = context
        self.source = source
        self.sink = sink
        workers = context.experiment.pipeline.workers
        self.processes = ["coordinator"] + [f"worker-{i}" for i in range(workers)]
        self.ready_events = {"coordinator": Event.COORDINATOR_START,
                             **{f"worker-{i}": Event.WORKER_RESTORED for i in range(workers)}}
        self.job = context.run_dir / "job.json"

    def prepare(self) -> dict[str, Any]:
        experiment, pipeline, env = self.context.experiment, self.context.experiment.pipeline, self.context.env
        # The coordinator binds a port of its own; until it says which (`on_ready`), the link leads nowhere.
        link = env.create_link("worker-coordinator", NOWHERE, listen_port=env.reserve_port())
        store: dict[str, str] = {}
        if pipeline.profile == "single-node-durable":
            store["sqlite_path"] = str(self.context.run_dir / "checkpoints.sqlite")
        elif pipeline.profile == "distributed-durable":
            store["postgres_dsn"] = env.postgres_dsn(via="coordinator-store")
        sink_settings = self.sink.settings()
        if pipeline.allowed_lateness is not None:  # a Parquet directory whatever the sink
            sink_settings["late_output_dir"] = str(self.context.run_dir / "late")
        config = JobConfig(
            job_id=self.context.run_id, run_dir=str(self.context.run_dir), workers=pipeline.workers,
            checkpoint_interval=pipeline.checkpoint_interval, profile=pipeline.profile,
            worker_coordinator_port=link.port,
            source=pipeline.source, source_settings=self.source.settings(),
            sink=pipeline.sink, sink_settings=sink_settings, mutant=pipeline.mutant,
            crash_points=experiment.crash_points(), max_rate=self.source.max_rate(),
            allowed_lateness=pipeline.allowed_lateness, **store,
        )
        self.job.write_text(config.model_dump_json(indent=2))
        return json.loads(self.job.read_text())

    def factory(self, name: str) -> Factory:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **{TRUE_EPOCH: str(true_epoch())})
        if name in clock_targets(self.context.experiment.faults):
            env.update(clock_env(self.context.run_dir, name))
        if name == "coordinator":
            argv = [sys.executable, "-m", "drivers.runtime.coordinator", str(self.job)]
        else:
            argv = [sys.executable, "-m", "drivers.runtime.worker", str(self.job), name.split("-")[1]]
        logs = self.context.run_dir / "logs"

        def start(incarnation: int) -> ManagedProcess:
            return ManagedProcess(name, argv, logs / f"{name}-{incarnation}.log", cwd=REPO, env=env)
        return start

    def on_ready(self, name: str, event: dict[str, Any]) -> None:
        """A coordinator listens on a port of its own choosing: the workers' link goes there now."""
        if name == "coordinator":
            self.context.env.retarget_link("worker-coordinator", int(event["port"]))

    def start(self, pid: Callable[[str], int | None], stack: ExitStack) -> None:
        """Nothing runs beside the runtime's own processes."""

    def status(self) -> Status | None:
        """The coordinator's last committed checkpoint, or None before the first one."""
        try:
            return json.loads((self.context.run_dir / "job-status.json").read_text())
        except (OSError, ValueError):
            return None

    def resolve_role(self, role: str) -> str:
        raise ValueError(f"the native engine has no role {role!r}")
