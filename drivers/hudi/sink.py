"""The Hudi two-phase copy-on-write sink: requested, inflight, then one atomic `.commit` file."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from drivers.hudi.layout import (
    META_COLUMNS,
    RECORD_KEY,
    HudiLayout,
    avro_fields,
    avro_schema,
    commit_metadata,
    merge_fields,
    write_atomic,
)
from drivers.parquet_files import fsync_dir
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CommitError, CommitHandle, CrashHook
from drivers.sdk.diskfaults import check_disk

if TYPE_CHECKING:
    from drivers.sdk.diskfaults import DiskFaults

class HudiTwoPhaseSink:
    """Two-phase inserts into a copy-on-write Hudi table; every prepare adds new file groups.

    `max_file_rows` splits one checkpoint into several base files (file groups), so a crash can
    land between them (`sink.write.mid`). Buffered rows are kept until a prepare succeeds: a prepare
    that fails half-way leaves a pending instant that the next prepare (or `recover`) rolls back,
    and the rows go into a fresh instant, so a retried write neither duplicates nor loses.

    Disk faults (`disk`) strike the data path of `prepare`: each marker and base file (write, fsync,
    rename) and the directory fsyncs around them. The instant is pending by then, so whatever a
    failure leaves behind stays hidden from readers until a rollback removes it.
    """

    SINK = "hudi-2pc"

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "HudiTwoPhaseSink":
        return cls(Path(settings["table"]), ctx.job_id, ctx.worker, ctx.crash, disk=ctx.disk)

    def __init__(self, table_path: Path, job_id: str, worker: int, crash: CrashHook, *,
                 table_name: str | None = None, precombine_field: str = "event_time",
                 max_file_rows: int = 1_000_000, disk: DiskFaults | None = None):
        self.layout = HudiLayout(Path(table_path), table_name, precombine_field)
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.max_file_rows = max_file_rows
        self.disk = disk
        """Disk-fault injection (drivers/sdk/diskfaults.py); None (the default) means no checks."""
        self.orphans_removed = 0
        """Pending instants of this job and worker that the last `recover` rolled back."""
        self.rolled_back: list[str] = []
        """Every instant this sink instance rolled back (failed, aborted or orphaned)."""
        self._buffer: list[pa.Table] = []
        self._owned: dict[str, CommitHandle] = {}
        """Prepared, not yet committed or aborted: these instants must never be rolled back."""

    @property
    def table_path(self) -> Path:
        return self.layout.path

    def _tag(self) -> dict[str, str]:
        return {"chaos.job-id": self.job_id, "chaos.worker": str(self.worker)}

    def _tmp_prefix(self) -> str:
        return f".chaos-{self.job_id}-w{self.worker}-"

    @property
    def _who(self) -> str:
        """This sink's process name, as a disk fault targets it."""
        return f"worker-{self.worker}"

    def _disk_check(self, op: str, path: Path) -> None:
        """A disk-fault check right before a file operation on the data path (no-op without `disk`)."""
        check_disk(self.disk, self._who, op, path)

    # -- writing -------------------------------------------------------------------------------
    def write(self, records: pa.Table) -> None:
        """Buffer in memory: nothing reaches the table before `prepare`."""
        if records.num_rows:
            if RECORD_KEY not in records.column_names:
                raise ValueError(f"records need the record key column {RECORD_KEY!r}")
            self._buffer.append(records)

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        """Roll back this worker's failed instants, then write a new instant's base files, invisible."""
        self.crash.hit("sink.prepare.before")
        handle = CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                              worker=self.worker, payload={"instant": None, "files": [], "write_stats": []})
        if not self._buffer:
            if self.layout.meta.is_dir():
                self._rollback_failed_instants(keep=set(self._owned))
            self.crash.hit("sink.prepare.after")
            return handle
        data = pa.concat_tables(self._buffer, promote_options="permissive")
        fields = merge_fields(self.layout.latest_schema_fields(), avro_fields(data.schema))
        self.layout.ensure_table(avro_schema(fields, self.layout.table_name), self._tmp_prefix())
        schema = avro_schema(fields, self.layout.table_name)
        self._rollback_failed_instants(keep=set(self._owned))

        extra = {**self._tag(), "chaos.checkpoint-id": str(checkpoint_id)}
        instant = self.layout.new_instant(commit_metadata([], extra), self._tmp_prefix())
        chunks = [data.slice(i, self.max_file_rows) for i in range(0, data.num_rows, self.max_file_rows)]
        planned = [self.layout.base_file_name(f"{uuid.uuid4()}-0", instant) for _ in chunks]
        stats = [{"fileId": name.split("_")[0], "path": name, "prevCommit": "null", "partitionPath": "",
                  "numWrites": chunk.num_rows, "numInserts": chunk.num_rows, "numDeletes": 0,
                  "numUpdateWrites": 0, "totalWriteErrors": 0} for name, chunk in zip(planned, chunks)]
        write_atomic(self.layout.meta, self.layout.inflight(instant).name,
                      json.dumps(commit_metadata(stats, {**extra, "schema": schema})).encode(), self._tmp_prefix())
        markers = self.layout.marker_dir(instant)
        markers.mkdir(parents=True, exist_ok=True)
        fsync_dir(markers.parent, disk=self.disk, who=self._who)
        for n, (name, chunk, stat) in enumerate(zip(planned, chunks, stats)):
            stat["fileSizeInBytes"] = stat["totalWriteBytes"] = self._write_base_file(instant, n, name, chunk)
            if n + 1 == max(1, len(chunks) // 2):
                self.crash.hit("sink.write.mid")
        self._buffer = []
        handle = handle.model_copy(update={"payload": {
            "instant": instant, "files": planned, "write_stats": stats, "schema": schema}})
        self._owned[instant] = handle
        self.crash.hit("sink.prepare.after")
        return handle

    def _write_base_file(self, instant: str, file_index: int, name: str, chunk: pa.Table) -> int:
        """Marker first (so a rollback finds the file), then a hidden staged file, fsync, rename."""
        markers = self.layout.marker_dir(instant)
        marker = markers / f"{name}.marker.CREATE"
        with open(marker, "wb") as f:
            self._disk_check("fsync", marker)  # disk-fault injection point
            os.fsync(f.fileno())
        fsync_dir(markers, disk=self.disk, who=self._who)
        keys = pa.array([str(v) for v in chunk.column(RECORD_KEY).to_pylist()], pa.string())
        n = chunk.num_rows
        meta = {
            "_hoodie_commit_time": pa.array([instant] * n, pa.string()),
            "_hoodie_commit_seqno": pa.array([f"{instant}_{file_index}_{i}" for i in range(n)], pa.string()),
            "_hoodie_record_key": keys,
            "_hoodie_partition_path": pa.array([""] * n, pa.string()),
            "_hoodie_file_name": pa.array([name] * n, pa.string()),
        }
        table = pa.table({**meta, **{c: chunk.column(c) for c in chunk.column_names if c not in META_COLUMNS}})
        sorted_keys = sorted(keys.to_pylist())
        table = table.replace_schema_metadata({
            "hoodie_min_record_key": sorted_keys[0], "hoodie_max_record_key": sorted_keys[-1]})
        staged = self.layout.path / self.layout.staging_name(name)
        with open(staged, "wb") as f:
            self._disk_check("write", staged)  # disk-fault injection point
            pq.write_table(table, f)
            f.flush()
            self._disk_check("fsync", staged)  # disk-fault injection point
            os.fsync(f.fileno())
        self._disk_check("rename", self.layout.path / name)  # disk-fault injection point
        os.replace(staged, self.layout.path / name)
        fsync_dir(self.layout.path, disk=self.disk, who=self._who)
        return (self.layout.path / name).stat().st_size

    # -- committing ----------------------------------------------------------------------------
    def commit(self, handle: CommitHandle) -> None:
        """Complete the instant: `{instant}.commit` is written atomically, once. Safe to repeat."""
        if handle.sink != self.SINK:
            raise ValueError(f"not a {self.SINK} handle: {handle.sink}")
        instant = handle.payload.get("instant")
        if instant is None:
            return
        if self.layout.completed(instant).exists():
            self._cleanup_completed(instant)
            self._owned.pop(instant, None)
            return
        self.crash.hit("sink.commit.before")
        if not (self.layout.inflight(instant).exists() or self.layout.requested(instant).exists()):
            raise CommitError(f"instant {instant} (checkpoint {handle.checkpoint_id}) is neither completed nor "
                              "pending: it was rolled back, and its prepared data is lost")
        missing = [name for name in handle.payload.get("files", []) if not (self.layout.path / name).exists()]
        if missing:
            raise CommitError(f"instant {instant}: base files {missing} are missing; refusing to commit "
                              "a partial instant")
        self.layout.check_table()
        fields = merge_fields(self.layout.latest_schema_fields(), json.loads(handle.payload["schema"])["fields"])
        extra = {"chaos.job-id": handle.job_id, "chaos.worker": str(handle.worker),
                 "chaos.checkpoint-id": str(handle.checkpoint_id),
                 "schema": avro_schema(fields, self.layout.table_name)}
        metadata = commit_metadata(list(handle.payload.get("write_stats", [])), extra)
        write_atomic(self.layout.meta, self.layout.completed(instant).name, json.dumps(metadata).encode(),
                      self._tmp_prefix(), exclusive=True)
        self._cleanup_completed(instant)
        self._owned.pop(instant, None)
        self.crash.hit("sink.commit.after")

    def _cleanup_completed(self, instant: str) -> None:
        """After completion: markers, then the inflight and requested files (Hudi keeps these; the
        completed file supersedes them, and readers only look at completed instants)."""
        shutil.rmtree(self.layout.marker_dir(instant), ignore_errors=True)
        removed = False
        for path in (self.layout.inflight(instant), self.layout.requested(instant)):
            if path.exists():
                path.unlink(missing_ok=True)
                removed = True
        if removed:
            fsync_dir(self.layout.meta)

    def abort(self, handle: CommitHandle) -> None:
        instant = handle.payload.get("instant")
        if instant is None:
            return
        if self.layout.completed(instant).exists():
            raise CommitError(f"instant {instant} (checkpoint {handle.checkpoint_id}) is committed "
                              "and cannot be aborted")
        self._rollback(instant)
        self._owned.pop(instant, None)

    # -- rollback ------------------------------------------------------------------------------
    def _pending_instants_of_mine(self) -> list[str]:
        mine = []
        for instant, states in sorted(self.layout.instants().items()):
            if "commit" in states:
                continue
            if self.layout.owner(instant) == (self.job_id, self.worker):
                mine.append(instant)
        return mine

    def _rollback_failed_instants(self, keep: set[str]) -> list[str]:
        """Roll back every pending instant of this job and worker except `keep`, newest first (as
        Hudi rolls back failed writes). Completed instants' leftovers are only tidied up."""
        for instant, states in self.layout.instants().items():
            if "commit" in states and states != {"commit"} and instant not in keep \
                    and self.layout.owner(instant) == (self.job_id, self.worker):
                self._cleanup_completed(instant)
        failed = [t for t in self._pending_instants_of_mine() if t not in keep]
        for instant in sorted(failed, reverse=True):
            self._rollback(instant)
        return failed

    def _instant_files(self, instant: str) -> set[str]:
        """Every base file an instant may have created: its markers, its planned write stats, and
        any base or staged file carrying its instant time."""
        names: set[str] = set()
        markers = self.layout.marker_dir(instant)
        if markers.is_dir():
            names |= {p.name[: -len(".marker.CREATE")] for p in markers.iterdir()
                      if p.name.endswith(".marker.CREATE")}
        stats = self.layout.read_metadata(self.layout.inflight(instant)).get("partitionToWriteStats", {})
        names |= {s["path"] for group in stats.values() for s in group if s.get("path")}
        suffix = f"_{instant}.parquet"
        if self.layout.path.is_dir():
            for p in self.layout.path.iterdir():
                if p.name.endswith(suffix) or p.name.endswith(f"{suffix}.inprogress"):
                    names.add(p.name.lstrip(".").removesuffix(".inprogress"))
        return names

    def _rollback(self, instant: str) -> None:
        """Undo a pending instant: data files first, then markers, then inflight, then requested.

        The order matters to every reader: while the instant is on the timeline its files are
        hidden, but a base file whose instant has left the timeline looks committed to hudi-rs
        once it is older than the first instant left (see the module docstring).
        """
        if self.layout.completed(instant).exists():
            raise CommitError(f"instant {instant} is completed and cannot be rolled back")
        self._delete_data_files(instant)
        shutil.rmtree(self.layout.marker_dir(instant), ignore_errors=True)
        self._delete_timeline_entries(instant)
        self.rolled_back.append(instant)

    def _delete_data_files(self, instant: str) -> None:
        files = self._instant_files(instant)
        for name in files:
            (self.layout.path / name).unlink(missing_ok=True)
            (self.layout.path / self.layout.staging_name(name)).unlink(missing_ok=True)
        if files:
            fsync_dir(self.layout.path)

    def _delete_timeline_entries(self, instant: str) -> None:
        for path in (self.layout.inflight(instant), self.layout.requested(instant)):
            path.unlink(missing_ok=True)
            fsync_dir(self.layout.meta)

    def recover(self, committed: list[CommitHandle]) -> None:
        """Roll back this job+worker's pending instants that `committed` does not list, then commit
        the ones it does (idempotently). Rolling back first means no reader ever sees the table
        completed while an orphan of ours is still waiting to be removed."""
        self._buffer = []
        self._owned = {}
        mine = [h for h in committed if h.sink == self.SINK]
        keep = {h.payload["instant"] for h in mine if h.payload.get("instant")}
        removed = 0
        if self.layout.meta.is_dir():
            removed = len(self._rollback_failed_instants(keep=keep))
            pattern = re.compile(re.escape(self._tmp_prefix()) + r"[0-9a-f]{32}\.tmp")
            for directory in (self.layout.meta, self.layout.path):
                for path in directory.iterdir():
                    if pattern.fullmatch(path.name):
                        path.unlink(missing_ok=True)
        for handle in mine:
            self.commit(handle)
        self.orphans_removed = removed

    def close(self) -> None:
        """Unprepared rows are dropped: only prepare + commit makes data durable and visible."""
        self._buffer = []
