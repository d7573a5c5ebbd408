"""Iceberg connectors on pyiceberg: a batch source, a plain append sink and a two-phase sink.

The catalog is pyiceberg's `SqlCatalog`: an embedded SQLite file by default, or PostgreSQL (the
distributed-durable setup, reached over a link the testbed can partition). The warehouse is a
local directory.

The two-phase sink follows Iceberg's Flink committer:
  prepare  writes the checkpoint's rows as Parquet data files under the table's data location.
           Nothing references them yet, so no reader can see them (Iceberg readers only read the
           files a snapshot lists).
  commit   adds those files in ONE snapshot whose summary carries `chaos.job-id`, `chaos.worker`
           and `chaos.max-committed-checkpoint-id` (Flink: `flink.job-id`,
           `flink.max-committed-checkpoint-id`). Before committing it walks the current snapshot's
           ancestry: a checkpoint at or below the highest committed one for this job and worker is
           already in the table. That is what makes re-committing after a lost response safe
           (iceberg #2808).
  race     the check and the commit use the same loaded metadata, and the catalog commit is
           optimistic (it asserts that `main` still points at the snapshot the check saw). When a
           restarted committer lands the same checkpoint first (iceberg #14425), our commit fails
           with CommitFailedException, and we reload and re-check instead of retrying blindly.
           pyiceberg's own commit retry (`commit.retry.num-retries`, default 4) would rebase the
           append onto the new head WITHOUT re-checking, and publish the files a second time, so
           it is switched off for these commits (in memory only; see `_no_blind_retry`).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from tenacity import Retrying, retry_if_exception, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from chaos.workload.records import SCHEMA
from drivers.contracts import CommitError, CommitHandle, CrashHook, Positions
from drivers.diskfaults import check_disk
from drivers.parquet_files import write_durably
from drivers.row_groups import RowGroupSource, RowGroupSplits

if TYPE_CHECKING:
    from drivers.diskfaults import DiskFaults

CATALOG_NAME = "chaos"
NAMESPACE = "chaos"

JOB_ID_PROP = "chaos.job-id"
WORKER_PROP = "chaos.worker"
MAX_COMMITTED_PROP = "chaos.max-committed-checkpoint-id"
CHECKPOINT_PROP = "chaos.checkpoint-id"
"""The checkpoint committed by this very snapshot (Flink keeps only the max; we also keep this one
so that a checkpoint skipped because a later one landed first is an error, not a silent loss)."""

PG_TIMEOUTS = {
    "connect_timeout": "5",        # a partitioned catalog link fails a connect in 5 s, not 2 min
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",   # unacknowledged sends on an established connection fail in 10 s
}
"""libpq connection parameters added to a PostgreSQL catalog URL. pyiceberg's SqlCatalog builds its
engine with `create_engine(uri, echo=…, pool_pre_ping=…)` only, so there is no way to pass
`connect_args`; SQLAlchemy hands the URL's query parameters to psycopg.connect instead."""

COMMIT_ATTEMPTS = 10


# -- catalog --------------------------------------------------------------------------------------
def catalog_url(catalog_uri: str | None, warehouse: Path) -> str:
    """The SQLAlchemy URL: `sqlite:///<warehouse>/catalog.db` for an empty/"sqlite" uri, a given
    sqlite URL as is, or a PostgreSQL URL with fail-fast timeouts added (those it lacks)."""
    if not catalog_uri or catalog_uri in ("sqlite", "embedded"):
        return f"sqlite:///{Path(warehouse).resolve() / 'catalog.db'}"
    url = make_url(catalog_uri)
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        extra = {k: v for k, v in PG_TIMEOUTS.items() if k not in url.query}
        url = url.update_query_dict(extra)
    return url.render_as_string(hide_password=False)


def _lost_init_race(e: BaseException) -> bool:
    if isinstance(e, (IntegrityError, ProgrammingError)):
        return True
    text = str(e).lower()
    return isinstance(e, OperationalError) and ("already exists" in text or "locked" in text)


def open_catalog(catalog_uri: str, warehouse: Path) -> Catalog:
    """A SqlCatalog named "chaos" with the namespace "chaos", warehouse `file://<warehouse>`."""
    warehouse = Path(warehouse).resolve()
    warehouse.mkdir(parents=True, exist_ok=True)
    uri = catalog_url(catalog_uri, warehouse)
    properties = {"uri": uri, "warehouse": warehouse.as_uri()}
    if not uri.startswith("sqlite"):
        properties["pool_pre_ping"] = "true"  # a connection from before a catalog restart is replaced
    # Workers that start together race to create the catalog's tables and the namespace on a new
    # database; the loser's "already exists" error goes away on a second try. A connection that
    # cannot be made (a partitioned link) is not retried here: it fails after connect_timeout.
    for attempt in Retrying(retry=retry_if_exception(_lost_init_race),
                            stop=stop_after_attempt(3), wait=wait_random_exponential(multiplier=0.05, max=0.5),
                            reraise=True):
        with attempt:
            catalog = SqlCatalog(CATALOG_NAME, **properties)
            catalog.create_namespace_if_not_exists(NAMESPACE)
    return catalog


def identifier(name: str) -> str:
    return name if "." in name else f"{NAMESPACE}.{name}"


def ensure_table(catalog: Catalog, name: str, schema: pa.Schema) -> Table:
    """Load the table, creating it from `schema` (nullable fields become optional) if missing."""
    ident = identifier(name)
    try:
        return catalog.load_table(ident)
    except NoSuchTableError:
        pass
    try:
        return catalog.create_table(ident, schema=schema)
    except TableAlreadyExistsError:  # another worker created it first
        return catalog.load_table(ident)


# -- files ----------------------------------------------------------------------------------------
def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a data-file location (`file://…`, a bare path, `s3://…`)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), unquote(parsed.path) if parsed.scheme else uri
    return pafs.FileSystem.from_uri(uri)


def _is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file")


def _local_path(uri: str) -> Path:
    return Path(_filesystem(uri)[1])


def _join(location: str, *parts: str) -> str:
    return "/".join([location.rstrip("/"), *parts])


def _plain_types(schema: pa.Schema) -> pa.Schema:
    """pyiceberg reads strings as large_string; hand out the workload's plain types instead."""
    swap = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    return pa.schema([f.with_type(swap.get(f.type, f.type)) for f in schema])


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table from a checkpoint's batches; schemas that changed mid-stream are unified."""
    return pa.concat_tables(tables, promote_options="permissive")


# -- batch source ---------------------------------------------------------------------------------
class IcebergBatchSource(RowGroupSource):
    """A bounded, replayable source over one snapshot of an Iceberg table, one row group per poll.

    `open` pins the table's current snapshot (a restore re-reads the snapshot recorded in the
    positions, so later commits to the table never shift what a replay hands out). The snapshot's
    data files come from Iceberg metadata (`plan_files`) and are split across workers by index in
    the sorted list; a position is the next row group of each owned file. Files are read with
    pyarrow, so this reader does not apply delete files (it refuses a snapshot that has any), and
    it projects columns by name onto the snapshot's schema (missing columns read as null; renamed
    columns are not followed, since that needs field ids).
    """

    def __init__(self, catalog_uri: str, warehouse: Path, table_name: str, crash: CrashHook):
        self.catalog_uri = catalog_uri
        self.warehouse = Path(warehouse)
        self.table_name = table_name
        self.crash = crash
        self.snapshot_id: int | None = None
        self._schema: pa.Schema = SCHEMA
        self.splits = RowGroupSplits(crash, convert=self._project)

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        start = start or {}
        catalog = open_catalog(self.catalog_uri, self.warehouse)
        try:
            table = catalog.load_table(identifier(self.table_name))
            if "snapshot_id" in start:
                snapshot_id = start["snapshot_id"]
                if snapshot_id is not None and table.snapshot_by_id(int(snapshot_id)) is None:
                    raise ValueError(f"snapshot {snapshot_id} of {self.table_name} no longer exists "
                                     "(expired?): the source cannot replay it")
            else:
                current = table.current_snapshot()
                snapshot_id = current.snapshot_id if current is not None else None
            self.snapshot_id = None if snapshot_id is None else int(snapshot_id)
            if self.snapshot_id is None:
                every: list[str] = []
            else:
                snapshot = table.snapshot_by_id(self.snapshot_id)
                assert snapshot is not None
                schema = table.schemas().get(snapshot.schema_id, table.schema()) \
                    if snapshot.schema_id is not None else table.schema()
                self._schema = _plain_types(schema_to_pyarrow(schema, include_field_ids=False))
                tasks = list(table.scan(snapshot_id=self.snapshot_id).plan_files())
                if any(task.delete_files for task in tasks):
                    raise NotImplementedError(f"snapshot {self.snapshot_id} of {self.table_name} has delete "
                                              "files; this row-group reader only reads append-only tables")
                every = sorted(task.file.file_path for task in tasks)
        finally:
            catalog.close()
        def open_file(path: str) -> pq.ParquetFile:
            fs, local = _filesystem(path)
            return pq.ParquetFile(fs.open_input_file(local))

        self.splits.assign(every, worker, workers, start.get("files", {}), open_file)

    def _project(self, table: pa.Table) -> pa.Table:
        columns = []
        for field in self._schema:
            if field.name in table.column_names:
                columns.append(table.column(field.name).cast(field.type))
            else:
                columns.append(pa.nulls(table.num_rows, field.type))
        return pa.Table.from_arrays(columns, schema=self._schema)

    def snapshot_positions(self) -> Positions:
        return {"snapshot_id": self.snapshot_id, "files": self.splits.positions()}


# -- sinks: shared ---------------------------------------------------------------------------------
class _IcebergSink:
    SINK = ""

    def __init__(self, catalog_uri: str, warehouse: Path, table_name: str, job_id: str, worker: int,
                 crash: CrashHook, *, disk: DiskFaults | None = None):
        self.catalog_uri = catalog_uri
        self.warehouse = Path(warehouse)
        self.table_name = table_name
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.disk = disk
        """Disk-fault injection (drivers/diskfaults.py); None (the default) means no checks."""
        self._buffer: list[pa.Table] = []
        self._catalog: Catalog | None = None

    def data_location(self, table: Table) -> str:
        return _join(table.location(), "data")

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

    Disk faults (`disk`): pyiceberg writes the append's data files itself, inside `tx.append`, so
    the injection point is a `write` check on the table's data location right before the append.
    The fault lands before any data file is written, never in the middle: the append fails, no
    snapshot is committed, and nothing becomes visible.
    """

    SINK = "iceberg-batch"

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        self.crash.hit("sink.prepare.before")
        rows = 0
        if self._buffer:
            data = _concat(self._buffer)
            rows = data.num_rows

            for attempt in Retrying(retry=retry_if_exception_type(CommitFailedException),
                                    stop=stop_after_attempt(COMMIT_ATTEMPTS),
                                    wait=wait_random_exponential(multiplier=0.05, max=1), reraise=True):
                with attempt:
                    table = self._load(data.schema)
                    self._disk_check("write", self.data_location(table))  # disk-fault injection point
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
            data = _concat(self._buffer)
            table = self._load(data.schema)
            highest, _ = self.committed_checkpoints(table)
            if highest is not None and highest >= checkpoint_id:
                # Its commit would be skipped as already done, silently dropping these rows.
                raise CommitError(f"checkpoint {checkpoint_id} of {self.job_id} w{self.worker} is at or "
                                  f"below the committed checkpoint {highest}: checkpoint id reused?")
            location = self.data_location(table)
            chunks = [data.slice(i, self.max_file_rows) for i in range(0, data.num_rows, self.max_file_rows)]
            for n, chunk in enumerate(chunks):
                uri = _join(location, self._file_name(checkpoint_id, n))
                self._write_file(chunk, uri)
                files.append(uri)
                if n + 1 == max(1, len(chunks) // 2):
                    self.crash.hit("sink.write.mid")
            self._buffer = []
        self.crash.hit("sink.prepare.after")
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                            worker=self.worker, payload={"files": files})

    def _write_file(self, data: pa.Table, uri: str) -> None:
        if _is_local(uri):
            path = _local_path(uri)
            # hidden temp, fsync, rename, fsync dir; disk: fault injection before each step
            write_durably(data, path.parent, path.name, disk=self.disk, who=f"worker-{self.worker}")
        else:
            self._disk_check("write", uri)  # disk-fault injection point
            fs, path = _filesystem(uri)
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
        fs, path = _filesystem(uri)
        with fs.open_input_file(path) as f:
            return pq.read_schema(f)

    @staticmethod
    def _exists(uri: str) -> bool:
        fs, path = _filesystem(uri)
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
        fs, path = _filesystem(uri)
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
        fs, directory = _filesystem(location)
        pattern = self._staged_pattern()
        removed = 0
        if fs.get_file_info(directory).type == pafs.FileType.Directory:
            for info in fs.get_file_info(pafs.FileSelector(directory)):
                if info.type != pafs.FileType.File or not pattern.fullmatch(info.base_name):
                    continue
                uri = _join(location, info.base_name)
                if uri in keep or info.path in keep:
                    continue
                fs.delete_file(info.path)
                removed += 1
        self.orphans_removed = removed

    def close(self) -> None:
        """Unprepared rows are dropped: only prepare + commit makes data durable and visible."""
        super().close()
