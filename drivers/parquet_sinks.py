"""Parquet sinks: a plain one (visible at once) and a two-phase one in the shape of Flink's FileSink.

The two-phase sink moves every part file through three states, all in the output directory so
that each move is an atomic same-filesystem rename:
  in-progress `.inprogress-…`  being written by `write`; lost on a crash, which is fine, because
                               the source rewinds to the checkpoint that preceded it;
  pending     `.pending-…`     closed and fsynced by `prepare`: durable but still hidden;
  finished    `part-…`         renamed by `commit` under a deterministic name, then recorded in a
                               manifest, so re-committing after a crash finishes the job instead of
                               writing the data a second time.
pyarrow datasets skip names that start with "." or "_", so a reader only ever sees finished files.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from drivers.parquet_files import fsync_dir, write_durably
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CommitError, CommitHandle, CrashHook, PoisonOnError
from drivers.sdk.diskfaults import check_disk

if TYPE_CHECKING:
    from drivers.sdk.diskfaults import DiskFaults


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table from a checkpoint's batches; schemas that changed mid-stream are unified."""
    return pa.concat_tables(tables, promote_options="permissive")


class ParquetSink:
    """Plain Parquet writes: `prepare` makes the batch visible at once, so commit has nothing to do.

    A crash after `prepare` but before the checkpoint is persisted leaves visible rows that the
    source will hand out again: at least once with a replayable source, best effort otherwise.
    """

    SINK = "parquet"

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "ParquetSink":
        return cls(Path(settings["output_dir"]), ctx.job_id, ctx.worker, ctx.crash, disk=ctx.disk)

    def __init__(self, output_dir: Path, job_id: str, worker: int, crash: CrashHook, *,
                 disk: DiskFaults | None = None):
        self.output_dir = Path(output_dir)
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.disk = disk
        """Disk-fault injection (drivers/sdk/diskfaults.py); None (the default) means no checks."""
        self._buffer: list[pa.Table] = []

    def write(self, records: pa.Table) -> None:
        if records.num_rows:
            self._buffer.append(records)

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        self.crash.hit("sink.prepare.before")
        files: list[str] = []
        if self._buffer:
            name = f"part-{self.job_id}-w{self.worker}-c{checkpoint_id}-{uuid.uuid4().hex[:8]}.parquet"
            write_durably(_concat(self._buffer), self.output_dir, name,
                          disk=self.disk, who=f"worker-{self.worker}")  # disk: fault injection
            self._buffer = []
            files.append(name)
            self.crash.hit("sink.write.mid")
        self.crash.hit("sink.prepare.after")
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                            worker=self.worker, payload={"files": files})

    def commit(self, handle: CommitHandle) -> None:
        """Nothing to do: the data became visible in `prepare`."""

    def abort(self, handle: CommitHandle) -> None:
        """Nothing can be undone: visible data stays (the guarantee is not two-phase)."""

    def recover(self, committed: list[CommitHandle]) -> None:
        """Drop this worker's half-written staging files (write_durably's `.part-….inprogress`)."""
        self._buffer = []
        pattern = re.compile(rf"\.part-{re.escape(self.job_id)}-w{self.worker}-c\d+-[0-9a-f]{{8}}"
                             r"\.parquet\.inprogress")
        if self.output_dir.is_dir():
            for path in self.output_dir.iterdir():
                if pattern.fullmatch(path.name):
                    path.unlink(missing_ok=True)

    def close(self) -> None:
        self._buffer = []


class TwoPhaseParquetSink:
    """Two-phase Parquet writes, idempotent commit through a per-checkpoint manifest.

    `max_file_rows` rolls the in-progress file, so one checkpoint can hold several part files
    (and a crash can land between their renames); a schema change mid-stream also rolls it.
    """

    SINK = "parquet-2pc"

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "TwoPhaseParquetSink":
        return cls(Path(settings["output_dir"]), ctx.job_id, ctx.worker, ctx.crash, disk=ctx.disk)

    def __init__(self, output_dir: Path, job_id: str, worker: int, crash: CrashHook,
                 max_file_rows: int = 1_000_000, *, disk: DiskFaults | None = None):
        self.output_dir = Path(output_dir)
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.max_file_rows = max_file_rows
        self.disk = disk
        """Disk-fault injection (drivers/sdk/diskfaults.py); None (the default) means no checks."""
        self.orphans_removed = 0
        self._staged: list[Path] = []
        """Closed and fsynced in-progress files, waiting for the next `prepare`."""
        self._open: tuple[Path, IO[bytes], pq.ParquetWriter, int] | None = None
        self._poison = PoisonOnError()

    # -- names ---------------------------------------------------------------------------------
    def manifest_path(self, handle: CommitHandle) -> Path:
        return (self.output_dir / "_manifests" / handle.job_id
                / f"c{handle.checkpoint_id}-w{handle.worker}.json")

    def _orphan_pattern(self) -> re.Pattern[str]:
        tag = rf"{re.escape(self.job_id)}-w{self.worker}-"
        return re.compile(rf"\.inprogress-{tag}[0-9a-f]{{32}}\.parquet"
                          rf"|\.pending-{tag}c\d+-[0-9a-f]{{8}}\.parquet")

    # -- disk-fault injection ------------------------------------------------------------------
    def _disk_check(self, op: str, path: Path) -> None:
        """Before each write, fsync and rename on the data path: may raise EIO/ENOSPC or stall."""
        check_disk(self.disk, f"worker-{self.worker}", op, path)

    def _fsync_dir_checked(self, directory: Path) -> None:
        """fsync_dir on the data path (prepare, commit), with the disk-fault check when enabled."""
        fsync_dir(directory, disk=self.disk, who=f"worker-{self.worker}")

    # -- writing -------------------------------------------------------------------------------
    def write(self, records: pa.Table) -> None:
        """Append to the hidden in-progress file; a schema change or `max_file_rows` rolls it."""
        with self._poison.guard():
            if not records.num_rows:
                return
            if self._open is not None and not self._open[2].schema.equals(records.schema):
                self._roll()
            if self._open is None:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                path = self.output_dir / f".inprogress-{self.job_id}-w{self.worker}-{uuid.uuid4().hex}.parquet"
                f = open(path, "wb")
                self._open = (path, f, pq.ParquetWriter(f, records.schema), 0)
            path, f, writer, rows = self._open
            self._disk_check("write", path)  # disk-fault injection point
            writer.write_table(records)
            self._open = (path, f, writer, rows + records.num_rows)
            if rows + records.num_rows >= self.max_file_rows:
                self._roll()

    def _roll(self) -> None:
        """Finish the open in-progress file: Parquet footer, flush, fsync."""
        assert self._open is not None
        path, f, writer, _ = self._open
        self._disk_check("write", path)  # disk-fault injection point (the footer)
        writer.close()
        f.flush()
        self._disk_check("fsync", path)  # disk-fault injection point
        os.fsync(f.fileno())
        f.close()
        self._open = None
        self._staged.append(path)

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        """Turn everything written since the last prepare into durable, hidden pending files."""
        self.crash.hit("sink.prepare.before")
        handle = CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                              worker=self.worker, payload={"files": []})
        if self.manifest_path(handle).exists():
            # A reused checkpoint id would make commit a no-op and silently drop these rows.
            raise CommitError(f"checkpoint {checkpoint_id} of {self.job_id} w{self.worker} is already committed")
        with self._poison.guard():
            if self._open is not None:
                self._roll()
            staged, self._staged = self._staged, []
            pairs: list[list[str]] = []
            for n, path in enumerate(staged):
                pending = f".pending-{self.job_id}-w{self.worker}-c{checkpoint_id}-{uuid.uuid4().hex[:8]}.parquet"
                self._disk_check("rename", self.output_dir / pending)  # disk-fault injection point
                os.replace(path, self.output_dir / pending)
                pairs.append([pending, f"part-{self.job_id}-w{self.worker}-c{checkpoint_id}-{n}.parquet"])
                if n + 1 == max(1, len(staged) // 2):
                    self._fsync_dir_checked(self.output_dir)  # disk-fault check when enabled
                    self.crash.hit("sink.write.mid")
            if pairs:
                self._fsync_dir_checked(self.output_dir)  # disk-fault check when enabled
        self.crash.hit("sink.prepare.after")
        return handle.model_copy(update={"payload": {"files": pairs}})

    # -- committing ----------------------------------------------------------------------------
    def commit(self, handle: CommitHandle) -> None:
        """Rename pending to finished, then record the manifest. Safe to repeat after any crash."""
        if handle.sink != self.SINK:
            raise ValueError(f"not a {self.SINK} handle: {handle.sink}")
        manifest = self.manifest_path(handle)
        if manifest.exists():
            return
        self.crash.hit("sink.commit.before")
        pairs = handle.payload.get("files", [])
        for n, (pending, final) in enumerate(pairs):
            src, dst = self.output_dir / pending, self.output_dir / final
            if src.exists():
                if dst.exists():
                    raise CommitError(f"both {pending} and {final} exist: checkpoint id reused?")
                self._disk_check("rename", dst)  # disk-fault injection point
                os.replace(src, dst)
            elif not dst.exists():
                raise CommitError(f"checkpoint {handle.checkpoint_id}: neither {pending} nor {final} "
                                  "exists; the prepared data is lost")
            if n == 0 and len(pairs) >= 2:
                self._fsync_dir_checked(self.output_dir)  # disk-fault check when enabled
                self.crash.hit("sink.commit.mid")
        if pairs:
            self._fsync_dir_checked(self.output_dir)  # disk-fault check when enabled
        self._write_manifest(manifest, {
            "job_id": handle.job_id, "checkpoint_id": handle.checkpoint_id, "worker": handle.worker,
            "files": [final for _, final in pairs],
        }, disk=self.disk, who=f"worker-{self.worker}")  # disk: fault injection
        self.crash.hit("sink.commit.after")

    @staticmethod
    def _write_manifest(path: Path, content: dict[str, object], *,
                        disk: DiskFaults | None = None, who: str = "") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as f:
            check_disk(disk, who, "write", tmp)  # disk-fault injection point
            json.dump(content, f)
            f.flush()
            check_disk(disk, who, "fsync", tmp)  # disk-fault injection point
            os.fsync(f.fileno())
        check_disk(disk, who, "rename", path)  # disk-fault injection point
        os.replace(tmp, path)
        fsync_dir(path.parent, disk=disk, who=who)

    def abort(self, handle: CommitHandle) -> None:
        if self.manifest_path(handle).exists():
            raise CommitError(f"checkpoint {handle.checkpoint_id} is committed and cannot be aborted")
        for pending, _ in handle.payload.get("files", []):
            (self.output_dir / pending).unlink(missing_ok=True)
        if self.output_dir.is_dir():
            fsync_dir(self.output_dir)

    def recover(self, committed: list[CommitHandle]) -> None:
        """Commit the restored checkpoint's handles, then delete this worker's other staged files."""
        self._discard_open()
        for handle in committed:
            self.commit(handle)
        keep = {pending for h in committed for pending, _ in h.payload.get("files", [])}
        pattern = self._orphan_pattern()
        removed = 0
        if self.output_dir.is_dir():
            for path in self.output_dir.iterdir():
                if pattern.fullmatch(path.name) and path.name not in keep:
                    path.unlink(missing_ok=True)
                    removed += 1
            fsync_dir(self.output_dir)
        self.orphans_removed = removed

    def _discard_open(self) -> None:
        """Drop unprepared writes and their files: the source rewinds past them on a restart."""
        paths = list(self._staged)
        if self._open is not None:
            path, f, writer, _ = self._open
            self._open = None
            paths.append(path)
            for closer in (writer.close, f.close):
                try:
                    closer()
                except Exception:
                    pass  # a torn file after a failed write: it is deleted just below
        for path in paths:
            path.unlink(missing_ok=True)
        self._staged = []
        self._poison.clear()

    def close(self) -> None:
        """Unprepared writes are dropped: only a prepare + commit makes data durable and visible."""
        self._discard_open()
