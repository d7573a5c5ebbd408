"""What both Delta sinks are made of: the table, the worker's identity, and its buffer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from drivers.delta.table import local_path
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CrashHook

if TYPE_CHECKING:
    from drivers.sdk.diskfaults import DiskFaults


class DeltaSink:
    SINK = ""

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> Any:
        return cls(settings["table"], ctx.job_id, ctx.worker, ctx.crash, disk=ctx.disk)

    def __init__(self, table_uri: str, job_id: str, worker: int, crash: CrashHook,
                 max_file_rows: int = 1_000_000, max_commit_attempts: int = 8, *,
                 disk: DiskFaults | None = None):
        self.table_uri = str(table_uri)
        self.table_dir = local_path(table_uri)
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.max_file_rows = max_file_rows
        self.max_commit_attempts = max_commit_attempts
        self.disk = disk
        """Disk-fault injection (drivers/sdk/diskfaults.py); None (the default) means no checks."""
        self._buffer: list[pa.Table] = []

    @property
    def who(self) -> str:
        """This worker, as the disk-fault hook names it."""
        return f"worker-{self.worker}"
