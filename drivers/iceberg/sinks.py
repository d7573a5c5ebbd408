"""The Iceberg sinks: plain appends, and two-phase commits made idempotent by the snapshot ancestry."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from drivers.iceberg.catalog import (
    CHECKPOINT_PROP,
    COMMIT_ATTEMPTS,
    JOB_ID_PROP,
    MAX_COMMITTED_PROP,
    WORKER_PROP,
    concat,
    ensure_table,
    filesystem,
    identifier,
    is_local,
    join_location,
    local_path,
    open_catalog,
)
from drivers.iceberg.disk_io import with_disk_faults
from drivers.parquet_files import write_durably
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CommitError, CommitHandle, CrashHook
from drivers.sdk.diskfaults import check_disk
from drivers.sdk.records import SCHEMA

if TYPE_CHECKING:
    from drivers.sdk.diskfaults import DiskFaults

class _IcebergSink:
    SINK = ""

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "_IcebergSink":
        return cls(settings["catalog_uri"], Path(settings["warehouse"]), settings["table_name"], ctx.job_id,
                   ctx.worker, ctx.crash, disk=ctx.disk)

    def __init__(self, catalog_uri: str, warehouse: Path, table_name: str, job_id: str, worker: int,
                 crash: CrashHook, *, disk: DiskFaults | None = None):
        self.catalog_uri = catalog_uri
        self.warehouse = Path(warehouse)
        self.table_name = table_name
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.disk = disk
        """Disk-fault injection (drivers/sdk/diskfaults.py); None (the default) means no checks."""
        self._buffer: list[pa.Table] = []
        self._catalog: Catalog | None = None

    def data_location(self, table: Table) -> str:
        return join_location(table.location(), "data")

    def _disk_check(self, op: str, path: str) -> None:
        """A disk-fault check right before a data-file operation (no-op without `disk`)."""
        check_disk(self.disk, f"worker-{self.worker}", op, path)

    @property
    def catalog(self) -> Catalog:
        """Opened on first use, so that constructing a sink never waits on the catalog link."""
        if self._catalog is None:
            self._catalog = open_catalog(self.catalog_uri, self.warehouse)
        return self._catalog

    def _load(self, schema: pa.Schema = SCHEMA) -> Table:
        return ensure_table(self.catalog, self.table_name, schema)

    def write(self, records: pa.Table) -> None:
        if records.num_rows:
            self._buffer.append(records)

    def close(self) -> None:
        self._buffer = []
        if self._catalog is not None:
            try:
                self._catalog.close()  # type: ignore[attr-defined]
            except Exception:
                pass
            self._catalog = None


class IcebergBatchSink(_IcebergSink):
    """Plain appends: `prepare` commits the buffered rows at once, so commit and abort do nothing.

    A crash after the append but before the checkpoint is persisted leaves rows that a replayable
    source hands out again: at least once at best. pyiceberg's own commit retry is fine here, since
    rebasing a plain append is exactly what a non-idempotent append means.

    Disk faults (`disk`): pyiceberg writes the append's files itself, inside `tx.append` and the
    commit, through the table's FileIO, which is wrapped (`disk_io.py`) so that a fault can strike
    each file it creates: a data file, the manifest, the manifest list. A fault between two of them
    fails the append with files on disk that no snapshot references, so nothing becomes visible.
    """

    SINK = "iceberg-batch"

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        self.crash.hit("sink.prepare.before")
        rows = 0
        if self._buffer:
            data = concat(self._buffer)
            rows = data.num_rows

            for attempt in Retrying(retry=retry_if_exception_type(CommitFailedException),
                                    stop=stop_after_attempt(COMMIT_ATTEMPTS),
                                    wait=wait_random_exponential(multiplier=0.05, max=1), reraise=True):
                with attempt:
                    table = with_disk_faults(self._load(data.schema), self.disk, f"worker-{self.worker}")
                    with table.transaction() as tx:
                        tx.update_schema().union_by_name(data.schema).commit()
                        tx.append(data, snapshot_properties={
                            JOB_ID_PROP: self.job_id, WORKER_PROP: str(self.worker),
                            CHECKPOINT_PROP: str(checkpoint_id)})
            self._buffer = []
        self.crash.hit("sink.prepare.after")
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                            worker=self.worker, payload={"rows": rows})

    def commit(self, handle: CommitHandle) -> None:
        """Nothing to do: the rows were committed in `prepare`."""

    def abort(self, handle: CommitHandle) -> None:
        """Nothing can be undone: committed snapshots stay (the guarantee is not two-phase)."""

    def recover(self, committed: list[CommitHandle]) -> None:
        self._buffer = []


# -- two-phase sink --------------------------------------------------------------------------------
def _no_blind_retry(table: Table) -> Table:
    """Switch off pyiceberg's commit retry for this handle's commits, in memory only.

    Transaction.commit_transaction reads `commit.retry.num-retries` from the metadata it holds and,
    on CommitFailedException, refreshes and rebuilds the append on the new head. Our ancestry check
    ran against the old head, so a blind rebase could publish a checkpoint that a racing committer
    has just published (iceberg #14425). The catalog never sees this property: SqlCatalog applies
    the transaction's updates to the metadata it loads itself.
    """
    props = dict(table.metadata.properties)
    props["commit.retry.num-retries"] = "0"  # TableProperties.COMMIT_NUM_RETRIES
    table.metadata = table.metadata.model_copy(update={"properties": props})
    return table


class IcebergTwoPhaseSink(_IcebergSink):
    """Two-phase Iceberg writes with an idempotent commit, in the manner of Flink's committer.

    `max_file_rows` splits a checkpoint's rows across several data files (so `sink.write.mid` can
    land between them). Schema evolution: a checkpoint whose rows carry a new (nullable) column or
    a widened type evolves the table with `union_by_name`, in the same atomic commit as its files.
    Limits: columns are only ever added or widened, never dropped (a file without a column reads
    it as null) or renamed; an all-null new column (Arrow type null) cannot become an Iceberg type.

    Disk faults (`disk`) strike each data file `prepare` writes: on a local warehouse every step of
    `write_durably` (write, fsync, rename, directory fsync), on an object store the one PUT. No
    snapshot lists a file yet, so a failure leaves at most an orphan that `recover` removes.
    """

    SINK = "iceberg-2pc"

    def __init__(self, catalog_uri: str, warehouse: Path, table_name: str, job_id: str, worker: int,
                 crash: CrashHook, max_file_rows: int = 1_000_000, *, disk: DiskFaults | None = None):
        super().__init__(catalog_uri, warehouse, table_name, job_id, worker, crash, disk=disk)
        self.max_file_rows = max_file_rows
        self.orphans_removed = 0
        self.check_duplicate_files = True
        """pyiceberg's own guard in add_files (it refuses files the table already references); a
        second line of defence behind the ancestry check, which turns a would-be duplicate into an
        error."""

    # -- names ---------------------------------------------------------------------------------
    def _file_name(self, checkpoint_id: int, n: int) -> str:
        # The random suffix keeps a re-prepared checkpoint id from ever overwriting a committed file.
        return f"chaos-{self.job_id}-w{self.worker}-c{checkpoint_id}-{n}-{uuid.uuid4().hex[:8]}.parquet"

    def _staged_pattern(self) -> re.Pattern[str]:
        name = rf"chaos-{re.escape(self.job_id)}-w{self.worker}-c\d+-\d+-[0-9a-f]{{8}}\.parquet"
        return re.compile(rf"{name}|\.{name}\.inprogress")

    # -- ancestry ------------------------------------------------------------------------------
    def committed_checkpoints(self, table: Table) -> tuple[int | None, set[int]]:
        """The highest `chaos.max-committed-checkpoint-id` of this job and worker in the current
        snapshot's ancestry, and the checkpoint ids those snapshots committed themselves."""
        highest: int | None = None
        ids: set[int] = set()
        for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
            summary = snapshot.summary
            if summary is None:
                continue
            props = summary.additional_properties
            if props.get(JOB_ID_PROP) != self.job_id or props.get(WORKER_PROP) != str(self.worker):
                continue
            if MAX_COMMITTED_PROP in props:
                value = int(props[MAX_COMMITTED_PROP])
                highest = value if highest is None else max(highest, value)
            if CHECKPOINT_PROP in props:
                ids.add(int(props[CHECKPOINT_PROP]))
        return highest, ids

    def _is_committed(self, table: Table, handle: CommitHandle) -> bool:
        highest, ids = self.committed_checkpoints(table)
        if highest is None or highest < handle.checkpoint_id:
            return False
        if handle.checkpoint_id not in ids and handle.payload.get("files"):
            raise CommitError(
                f"checkpoint {handle.checkpoint_id} of {self.job_id} w{self.worker} was never committed, "
                f"but checkpoint {highest} already was: committing out of order would drop its rows")
        return True

    # -- writing -------------------------------------------------------------------------------
    def prepare(self, checkpoint_id: int) -> CommitHandle:
        """Write the buffered rows as data files no snapshot references yet: durable, invisible."""
        self.crash.hit("sink.prepare.before")
        files: list[str] = []
        if self._buffer:
            data = concat(self._buffer)
            table = self._load(data.schema)
            highest, _ = self.committed_checkpoints(table)
            if highest is not None and highest >= checkpoint_id:
                # Its commit would be skipped as already done, silently dropping these rows.
                raise CommitError(f"checkpoint {checkpoint_id} of {self.job_id} w{self.worker} is at or "
                                  f"below the committed checkpoint {highest}: checkpoint id reused?")
            location = self.data_location(table)
            chunks = [data.slice(i, self.max_file_rows) for i in range(0, data.num_rows, self.max_file_rows)]
            for n, chunk in enumerate(chunks):
                uri = join_location(location, self._file_name(checkpoint_id, n))
                self._write_file(chunk, uri)
                files.append(uri)
                if n + 1 == max(1, len(chunks) // 2):
                    self.crash.hit("sink.write.mid")
            self._buffer = []
        self.crash.hit("sink.prepare.after")
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                            worker=self.worker, payload={"files": files})

    def _write_file(self, data: pa.Table, uri: str) -> None:
        if is_local(uri):
            path = local_path(uri)
            # hidden temp, fsync, rename, fsync dir; disk: fault injection before each step
            write_durably(data, path.parent, path.name, disk=self.disk, who=f"worker-{self.worker}")
        else:
            self._disk_check("write", uri)  # disk-fault injection point
            fs, path = filesystem(uri)
            pq.write_table(data, path, filesystem=fs)  # an object-store PUT is atomic and durable

    # -- committing ----------------------------------------------------------------------------
    def _load_for_commit(self) -> Table:
        """The table as the ancestry check sees it, the commit's optimistic base, never rebased."""
        return _no_blind_retry(self.catalog.load_table(identifier(self.table_name)))

    def commit(self, handle: CommitHandle) -> None:
        """Add the handle's files in one snapshot, unless the ancestry says it is already there."""
        if handle.sink != self.SINK:
            raise ValueError(f"not a {self.SINK} handle: {handle.sink}")
        if (handle.job_id, handle.worker) != (self.job_id, self.worker):
            raise ValueError(f"handle of {handle.job_id} w{handle.worker} given to {self.job_id} w{self.worker}")
        files: list[str] = list(handle.payload.get("files", []))
        if not files:
            return  # an empty checkpoint: nothing to make visible
        for attempt in Retrying(retry=retry_if_exception_type(CommitFailedException),
                                stop=stop_after_attempt(COMMIT_ATTEMPTS),
                                wait=wait_random_exponential(multiplier=0.05, max=1), reraise=True):
            with attempt:
                if not self._commit_once(handle, files):
                    return
        self.crash.hit("sink.commit.after")

    def _commit_once(self, handle: CommitHandle, files: list[str]) -> bool:
        """One optimistic attempt; False when the checkpoint is already committed."""
        table = self._load_for_commit()
        if self._is_committed(table, handle):
            return False
        missing = [uri for uri in files if not self._exists(uri)]
        if missing:
            raise CommitError(f"checkpoint {handle.checkpoint_id} of {self.job_id} w{self.worker} is not "
                              f"committed and its data files are gone: {missing}")
        self.crash.hit("sink.commit.before")
        schema = pa.unify_schemas([self._file_schema(uri) for uri in files], promote_options="permissive")
        return self._add(table, handle, files, schema)

    def _add(self, table: Table, handle: CommitHandle, files: list[str], schema: pa.Schema) -> bool:
        properties = {
            JOB_ID_PROP: self.job_id,
            WORKER_PROP: str(self.worker),
            MAX_COMMITTED_PROP: str(handle.checkpoint_id),
            CHECKPOINT_PROP: str(handle.checkpoint_id),
        }
        with table.transaction() as tx:
            tx.update_schema().union_by_name(schema).commit()  # no change, no update
            tx.add_files(files, snapshot_properties=properties,
                         check_duplicate_files=self.check_duplicate_files)
        return True

    @staticmethod
    def _file_schema(uri: str) -> pa.Schema:
        fs, path = filesystem(uri)
        with fs.open_input_file(path) as f:
            return pq.read_schema(f)

    @staticmethod
    def _exists(uri: str) -> bool:
        fs, path = filesystem(uri)
        return fs.get_file_info(path).type == pafs.FileType.File

    # -- abort and recovery --------------------------------------------------------------------
    def _referenced_files(self, table: Table) -> set[str]:
        """Every data file any snapshot of the table references (deleting one would corrupt it)."""
        if table.current_snapshot() is None:
            return set()
        return set(table.inspect.all_data_files().column("file_path").to_pylist())

    def abort(self, handle: CommitHandle) -> None:
        files: list[str] = list(handle.payload.get("files", []))
        if not files:
            return
        table = self.catalog.load_table(identifier(self.table_name))
        referenced = self._referenced_files(table) & set(files)
        if referenced:
            raise CommitError(f"checkpoint {handle.checkpoint_id} is committed and cannot be aborted: "
                              f"{sorted(referenced)}")
        for uri in files:
            self._delete(uri)

    @staticmethod
    def _delete(uri: str) -> None:
        fs, path = filesystem(uri)
        try:
            fs.delete_file(path)
        except FileNotFoundError:
            pass

    def recover(self, committed: list[CommitHandle]) -> None:
        """Commit the restored checkpoint's handles in checkpoint order, then delete this worker's
        data files that no snapshot references and no restored handle lists (orphans)."""
        self._buffer = []
        for handle in sorted(committed, key=lambda h: h.checkpoint_id):
            self.commit(handle)
        table = self._load()
        keep = {uri for h in committed for uri in h.payload.get("files", [])}
        keep |= self._referenced_files(table)
        location = self.data_location(table)
        fs, directory = filesystem(location)
        pattern = self._staged_pattern()
        removed = 0
        if fs.get_file_info(directory).type == pafs.FileType.Directory:
            for info in fs.get_file_info(pafs.FileSelector(directory)):
                if info.type != pafs.FileType.File or not pattern.fullmatch(info.base_name):
                    continue
                uri = join_location(location, info.base_name)
                if uri in keep or info.path in keep:
                    continue
                fs.delete_file(info.path)
                removed += 1
        self.orphans_removed = removed

    def close(self) -> None:
        """Unprepared rows are dropped: only prepare + commit makes data durable and visible."""
        super().close()
