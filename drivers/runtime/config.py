"""A job's configuration, written by the runner and read by the coordinator and every worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class JobConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str
    run_dir: str
    workers: int
    checkpoint_interval: float
    profile: str
    worker_coordinator_port: int
    """Where workers connect: the `worker-coordinator` link's proxy, so it can be faulted. The
    coordinator binds a port of its own choosing and publishes it (`coordinator.start`), and the
    harness points the proxy there."""
    source: str
    source_settings: dict[str, Any] = {}
    sink: str
    sink_settings: dict[str, Any] = {}
    mutant: str | None = None
    """A seeded-bug variant of the source's or the sink's kind (`drivers.connectors`), or None."""
    sqlite_path: str | None = None
    postgres_dsn: str | None = None
    crash_points: dict[str, dict[str, int]] = {}
    """Armed crash points by process (`coordinator`, `worker-0`, ...): point -> the hit that fires."""
    allowed_lateness: float | None = None
    """Seconds behind a split's event-time watermark past which a record goes to the late output."""
    max_rate: float | None = None
    """Records per second per worker, for sources that would otherwise be read as fast as possible."""
    checkpoint_timeout: float = 30.0
    heartbeat_timeout: float = 10.0

    @property
    def history_path(self) -> Path:
        return Path(self.run_dir) / "history.jsonl"

    @property
    def status_path(self) -> Path:
        """The coordinator's latest committed checkpoint, for the runner to watch the job drain."""
        return Path(self.run_dir) / "job-status.json"

    @classmethod
    def load(cls, path: str | Path) -> "JobConfig":
        return cls.model_validate_json(Path(path).read_text())
