"""The two-phase Delta sink: commits made idempotent by Delta's `txn` action (the plain one is in batch_sink)."""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import CommitProperties, Transaction
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from drivers.delta.base import DeltaSink
from drivers.delta.evolution import add_actions, add_columns, evolution, to_table_types, widen
from drivers.delta.table import arrow_schema, ensure_table, file_stats, file_tag, load_table, relative_files
from drivers.parquet_files import fsync_dir, write_durably
from drivers.sdk.contracts import CommitError, CommitHandle, PoisonOnError


# -- two-phase sink ----------------------------------------------------------------------------
class DeltaTwoPhaseSink(DeltaSink):
    """Two-phase Delta writes, idempotent per (app_id, checkpoint id) through Delta's `txn` action.

    `max_file_rows` splits a checkpoint into several data files (a schema change mid-checkpoint
    also starts a new file), so a crash can land between them (`sink.write.mid`).

    Disk faults (`disk`) strike the staging of data files in `prepare` (the write, the fsync, the
    rename and the directory fsync of `write_durably`), where a failing disk can leave a hidden or
    unreferenced file behind: the prepare fails, the sink is poisoned, and `recover` removes it.
    They also strike the files a commit rewrites to widen a column (below).

    Schema evolution at commit, before the data commit (`sink.commit.mid` falls between): columns
    the table lacks are added, and a column the staged files have in a wider type widens the table
    by a rewrite of its files in one commit of its own (`drivers.delta.evolution.widen`, files
    `part-…-c{ckpt}-r{k}.parquet`). Staged files narrower than the table (another worker widened it
    since `prepare`) are rewritten in place under the table's types, same name, same rows.
    """

    SINK = "delta-2pc"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.orphans_removed = 0
        self._poison = PoisonOnError()

    # -- names ---------------------------------------------------------------------------------
    @property
    def app_id(self) -> str:
        return f"{self.job_id}-w{self.worker}"

    def file_name(self, checkpoint_id: int, n: int) -> str:
        return f"part-{file_tag(self.job_id, self.worker)}-c{checkpoint_id}-{n}.parquet"

    def _staged_pattern(self) -> re.Pattern[str]:
        """This worker's data files and the files its commits rewrote to widen a column (group 2: the
        checkpoint id), and their in-progress temporaries (group 1: the leading dot), as
        `write_durably` names them."""
        tag = re.escape(file_tag(self.job_id, self.worker))
        return re.compile(rf"(\.)?part-{tag}-c(\d+)-r?\d+\.parquet(?(1)\.inprogress)")

    def transaction_version(self) -> int | None:
        """The last checkpoint of this app_id in the Delta log (a fresh snapshot), None if none."""
        dt = load_table(self.table_uri)
        return None if dt is None else dt.transaction_version(self.app_id)

    # -- writing -------------------------------------------------------------------------------
    def write(self, records: pa.Table) -> None:
        """Buffer the rows in memory; nothing is on disk, let alone visible, before `prepare`."""
        with self._poison.guard():
            if records.num_rows:
                self._buffer.append(records)

    def _file_tables(self, table_schema: pa.Schema | None) -> list[pa.Table]:
        """The buffered batches as data files: one per run of equal schemas, split at max_file_rows,
        each cast to the table's types where they differ: up, or down only if lossless; a wider type
        stays, and widens the table at commit."""
        groups: list[list[pa.Table]] = []
        for batch in self._buffer:
            if groups and groups[-1][0].schema.equals(batch.schema):
                groups[-1].append(batch)
            else:
                groups.append([batch])
        files: list[pa.Table] = []
        for group in groups:
            table = pa.concat_tables(group)
            if table_schema is not None:
                table = to_table_types(table, table_schema, keep_wider=True)
            for offset in range(0, table.num_rows, self.max_file_rows):
                files.append(table.slice(offset, self.max_file_rows))
        return files

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        """Write the buffered rows as durable data files in the table directory, unreferenced by
        the Delta log and so invisible to every Delta reader until `commit`."""
        self.crash.hit("sink.prepare.before")
        dt = load_table(self.table_uri)
        committed = None if dt is None else dt.transaction_version(self.app_id)
        if committed is not None and committed >= checkpoint_id:
            # commit would skip this checkpoint as done and silently drop its rows
            raise CommitError(f"checkpoint {checkpoint_id} of {self.app_id} is not after the last "
                              f"committed one ({committed}) in {self.table_uri}")
        with self._poison.guard():
            tables = self._file_tables(None if dt is None else arrow_schema(dt))
            for n in range(len(tables)):
                if (self.table_dir / self.file_name(checkpoint_id, n)).exists():
                    # a pending handle's file, or an orphan that recover() should have removed:
                    # overwriting it could change rows under a handle that is still to be committed
                    raise CommitError(f"staged file {self.file_name(checkpoint_id, n)} already exists")
            adds: list[dict[str, Any]] = []
            schemas: list[pa.Schema] = []
            for n, table in enumerate(tables):
                name = self.file_name(checkpoint_id, n)
                # fsync file, rename, fsync dir; disk: fault injection before each step
                path = write_durably(table, self.table_dir, name, disk=self.disk, who=self.who)
                stat = path.stat()
                adds.append({"path": name, "size": stat.st_size,
                             "modification_time": int(stat.st_mtime * 1000), "stats": file_stats(table)})
                schemas.append(table.schema)
                if n + 1 < len(tables):
                    self.crash.hit("sink.write.mid")
            self._buffer = []
        self.crash.hit("sink.prepare.after")
        schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else None
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                            worker=self.worker, payload={
                                "app_id": self.app_id,
                                "files": [add["path"] for add in adds],
                                "adds": adds,
                                "schema": None if schema is None else Schema.from_arrow(schema).to_json(),
                            })

    # -- committing ----------------------------------------------------------------------------
    def _check_handle(self, handle: CommitHandle) -> None:
        if handle.sink != self.SINK:
            raise ValueError(f"not a {self.SINK} handle: {handle.sink}")
        if (handle.job_id, handle.worker) != (self.job_id, self.worker):
            raise ValueError(f"handle of {handle.job_id}-w{handle.worker} given to {self.app_id}")

    def commit(self, handle: CommitHandle) -> None:
        """Add the handle's files to the table with txn(app_id, checkpoint id), unless the log
        already holds that checkpoint. Safe to repeat after any crash."""
        self._check_handle(handle)
        if not handle.payload.get("adds"):
            return  # an empty checkpoint: nothing to make visible, no empty Delta version
        state = {"announced": False}
        for attempt in Retrying(retry=retry_if_exception_type(CommitFailedError),
                                stop=stop_after_attempt(self.max_commit_attempts),
                                wait=wait_random_exponential(multiplier=0.02, max=0.5), reraise=True):
            with attempt:
                self._commit_once(handle, state)

    def _commit_once(self, handle: CommitHandle, state: dict[str, bool]) -> None:
        schema = pa.schema(Schema.from_json(handle.payload["schema"]).to_arrow())
        dt = ensure_table(self.table_uri, schema)
        committed = dt.transaction_version(self.app_id)
        if committed is not None and committed >= handle.checkpoint_id:
            return  # already in the log: the commit landed earlier (maybe its response was lost)
        if not state["announced"]:
            state["announced"] = True
            self.crash.hit("sink.commit.before")
        for add in handle.payload["adds"]:
            if not (self.table_dir / add["path"]).is_file():
                raise CommitError(f"checkpoint {handle.checkpoint_id} of {self.app_id} is not in the "
                                  f"Delta log and its staged file {add['path']} is gone: the prepared "
                                  "data is lost")
        if self._evolve_schema(dt, schema, handle.checkpoint_id):
            self.crash.hit("sink.commit.mid")
            dt = DeltaTable(self.table_uri)
            committed = dt.transaction_version(self.app_id)
            if committed is not None and committed >= handle.checkpoint_id:
                return
        self._add_files(dt, handle, self._staged_adds(dt, handle))
        self.crash.hit("sink.commit.after")

    def _staged_adds(self, dt: DeltaTable, handle: CommitHandle) -> list[dict[str, Any]]:
        """The handle's `add` actions, each staged file checked unchanged since prepare. A file
        narrower than the table (widened since prepare) is first rewritten in place under the
        table's types: same rows, same name, an atomic replace; a file no reader can see yet."""
        table_schema = arrow_schema(dt)
        adds = []
        for add in handle.payload["adds"]:
            path = self.table_dir / add["path"]
            written = pq.read_schema(path)
            differs = any(f.name in table_schema.names and table_schema.field(f.name).type != f.type
                          for f in written)
            rows = json.loads(add["stats"])["numRecords"]
            if path.stat().st_size != add["size"] and (differs or pq.read_metadata(path).num_rows != rows):
                # only a rewrite in place by an earlier attempt changes a staged file's size
                raise CommitError(f"staged file {add['path']} has changed since prepare")
            if differs:
                table = to_table_types(pq.read_table(path), table_schema)
                write_durably(table, self.table_dir, add["path"], disk=self.disk, who=self.who)
                add = {**add, "stats": file_stats(table)}
            if path.stat().st_size != add["size"]:
                stat = path.stat()
                add = {**add, "size": stat.st_size, "modification_time": int(stat.st_mtime * 1000)}
            adds.append(add)
        return adds

    def _add_files(self, dt: DeltaTable, handle: CommitHandle, adds: list[dict[str, Any]]) -> None:
        """One Delta commit: the `add` actions of `adds` with txn(app_id, checkpoint id)."""
        properties = CommitProperties(
            app_transactions=[Transaction(app_id=self.app_id, version=handle.checkpoint_id)],
            custom_metadata={"chaos.job_id": self.job_id, "chaos.worker": self.worker,
                             "chaos.checkpoint_id": handle.checkpoint_id},
        )
        # The table's own schema: passing a wider one would not change the table's metadata
        # (delta-rs ignores it on append), which is why the schema is evolved just above.
        dt.create_write_transaction(add_actions(adds), mode="append", schema=dt.schema(),
                                    commit_properties=properties)

    def _evolve_schema(self, dt: DeltaTable, schema: pa.Schema, checkpoint_id: int) -> bool:
        """Bring the table's schema up to the handle's in one commit: a rewrite when a column
        widens (new columns included), else the new columns added. False when nothing changed."""
        change = evolution(arrow_schema(dt), schema)
        if change.widened:
            tag = file_tag(self.job_id, self.worker)
            widen(dt, self.table_dir, change.schema, lambda k: f"part-{tag}-c{checkpoint_id}-r{k}.parquet",
                  disk=self.disk, who=self.who)
        elif change.added:
            add_columns(dt, change.added)
        return bool(change.widened or change.added)

    def abort(self, handle: CommitHandle) -> None:
        """Delete the handle's staged files; a committed checkpoint cannot be aborted."""
        self._check_handle(handle)
        dt = load_table(self.table_uri)
        live = set() if dt is None else set(relative_files(dt, self.table_dir))
        files = handle.payload.get("files", [])
        if any(name in live for name in files):
            raise CommitError(f"checkpoint {handle.checkpoint_id} of {self.app_id} is committed "
                              "and cannot be aborted")
        for name in files:
            (self.table_dir / name).unlink(missing_ok=True)
        if self.table_dir.is_dir():
            fsync_dir(self.table_dir)

    def recover(self, committed: list[CommitHandle]) -> None:
        """Commit the restored checkpoint's handles (in checkpoint order), then delete this
        worker's staged files that neither they nor the Delta log reference."""
        self._buffer = []
        self._poison.clear()
        for handle in sorted(committed, key=lambda h: h.checkpoint_id):
            self.commit(handle)
        keep = {name for h in committed for name in h.payload.get("files", [])}
        dt = load_table(self.table_uri)
        live = set() if dt is None else set(relative_files(dt, self.table_dir))
        last = None if dt is None else dt.transaction_version(self.app_id)
        pattern = self._staged_pattern()
        removed = 0
        if self.table_dir.is_dir():
            for path in self.table_dir.iterdir():
                match = pattern.fullmatch(path.name)
                if match is None or path.name in keep or path.name in live:
                    continue
                in_progress = match.group(1) is not None
                if not in_progress and last is not None and int(match.group(2)) <= last:
                    # Its checkpoint is in the log, so the file was committed and later removed
                    # from the table (compaction, a rewrite that widened a column): only a vacuum
                    # may delete it (time travel).
                    continue
                path.unlink(missing_ok=True)
                removed += 1
            fsync_dir(self.table_dir)
        self.orphans_removed = removed

    def close(self) -> None:
        """Unprepared rows are dropped: only prepare + commit makes data durable and visible."""
        self._buffer = []
