"""The plain Delta sink: each checkpoint's rows appended at `prepare`, from data files it writes itself."""

from __future__ import annotations

import re
import uuid

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from drivers.delta.base import DeltaSink
from drivers.delta.evolution import (
    add_actions,
    add_columns,
    check_log_write,
    evolution,
    remove_files,
    stage_file,
    to_table_types,
    widen,
)
from drivers.delta.table import arrow_schema, concat, ensure_table, file_tag
from drivers.parquet_files import fsync_dir
from drivers.sdk.contracts import CommitHandle


class DeltaBatchSink(DeltaSink):
    """Plain appends: `prepare` commits the checkpoint's rows at once, so commit has nothing to do.

    The sink stages the data files itself, one by one through `write_durably` (a disk-fault check
    before each write, fsync, rename and directory fsync, and one before the log commit), then adds
    them to the table in one Delta commit of their `add` actions. A fault on any file fails the
    append before that commit: nothing becomes visible, the attempt's files are deleted, and the
    worker fails over and replays. That is why a disk fault can strike each file on its own
    (`disk_faults_per_file`), which delta-rs's own writer, doing its I/O in Rust, would not allow.

    Schema changes: a new column is added to the table in a commit of its own, a wider type widens
    the table by a rewrite (`drivers.delta.evolution.widen`), and narrower rows are cast up. A
    commit that conflicts (a concurrent append, schema change or rewrite) made nothing visible, so
    the append is redone from a fresh snapshot without any risk of a duplicate.
    """

    SINK = "delta-batch"

    def write(self, records: pa.Table) -> None:
        if records.num_rows:
            self._buffer.append(records)

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        self.crash.hit("sink.prepare.before")
        rows = 0
        if self._buffer:
            table = concat(self._buffer)
            for attempt in Retrying(retry=retry_if_exception_type(CommitFailedError),
                                    stop=stop_after_attempt(self.max_commit_attempts),
                                    wait=wait_random_exponential(multiplier=0.05, max=1), reraise=True):
                with attempt:
                    self._append(table, checkpoint_id)
            rows = table.num_rows
            self._buffer = []
        self.crash.hit("sink.prepare.after")
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                            worker=self.worker, payload={"rows": rows})

    def _append(self, table: pa.Table, checkpoint_id: int) -> None:
        """One attempt: bring the table's schema up to the rows', stage the files, commit them."""
        attempt = f"part-{file_tag(self.job_id, self.worker)}-c{checkpoint_id}-{uuid.uuid4().hex[:8]}"
        dt = self._evolved(ensure_table(self.table_uri, table.schema), table.schema, attempt)
        table = to_table_types(table, arrow_schema(dt))
        names = [f"{attempt}-{n}.parquet" for n in range(-(-table.num_rows // self.max_file_rows))]
        try:
            adds = [stage_file(table.slice(n * self.max_file_rows, self.max_file_rows), self.table_dir, name,
                               disk=self.disk, who=self.who) for n, name in enumerate(names)]
            check_log_write(self.disk, self.who, self.table_dir)
            # The table's own schema: the rows were cast to it, and new columns were added above.
            dt.create_write_transaction(add_actions(adds), mode="append", schema=dt.schema())
        except (OSError, CommitFailedError):
            remove_files(self.table_dir, names)  # not committed: no reader can ever need them
            raise

    def _evolved(self, dt: DeltaTable, schema: pa.Schema, attempt: str) -> DeltaTable:
        """The table after the schema changes the rows need (each its own commit), as a fresh snapshot."""
        change = evolution(arrow_schema(dt), schema)
        if change.widened:
            widen(dt, self.table_dir, change.schema, lambda k: f"{attempt}-r{k}.parquet", disk=self.disk, who=self.who)
        elif change.added:
            add_columns(dt, change.added)
        else:
            return dt
        return DeltaTable(self.table_uri)

    def commit(self, handle: CommitHandle) -> None:
        """Nothing to do: the rows became visible in `prepare`."""

    def abort(self, handle: CommitHandle) -> None:
        """Nothing can be undone: committed Delta versions stay (the guarantee is not two-phase)."""

    def recover(self, committed: list[CommitHandle]) -> None:
        """Drop unprepared rows and this worker's hidden temporaries. Data files of an append that
        died before its commit are unreferenced, so no reader sees them (a Delta vacuum removes them)."""
        self._buffer = []
        temporary = re.compile(rf"\.part-{re.escape(file_tag(self.job_id, self.worker))}-c\d+-.*\.parquet\.inprogress")
        if self.table_dir.is_dir():
            for path in self.table_dir.iterdir():
                if temporary.fullmatch(path.name):
                    path.unlink(missing_ok=True)
            fsync_dir(self.table_dir)

    def close(self) -> None:
        self._buffer = []
