"""A two-phase PostgreSQL sink on PostgreSQL's own two-phase commit, like Flink's JDBC XA sink.

- `prepare` inserts the checkpoint's rows in a transaction and ends it with
  `PREPARE TRANSACTION gid`: durable on the server, invisible to every reader.
- `commit` runs `COMMIT PREPARED gid`. The gid names the job, the worker and the checkpoint, and
  the prepared transaction also inserts its gid into a commits table, so a commit repeated after a
  lost response (the transaction is no longer prepared, and its gid is in the table) is
  recognised and not repeated; a gid neither prepared nor committed means the prepared rows are
  gone, which is an error, never a silent skip.
- `recover` commits the restored checkpoint's transactions, then rolls back every other prepared
  transaction of this worker (`pg_prepared_xacts`): the orphans of a prepare whose checkpoint was
  never persisted.

A lost connection (the `worker-postgres` link cut) is retried for a while; each loss is written
to the history as `sink.write_failed`, the evidence that a fault reached the sink's writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
import pyarrow as pa
from psycopg import errors, sql

from chaos_postgres.database import FIXED, commits_table, connect, create_output, documents, with_retries
from drivers.sdk import CommitError, CommitHandle, CrashHook, Event, PoisonOnError, Settings, WorkerContext

if TYPE_CHECKING:
    from drivers.sdk import History


class PostgresTwoPhaseSink:
    SINK = "postgres-2pc"

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "PostgresTwoPhaseSink":
        return cls(settings["dsn"], settings["table"], ctx.job_id, ctx.worker, ctx.crash, ctx.history)

    def __init__(self, dsn: str, table: str, job_id: str, worker: int, crash: CrashHook,
                 history: History | None = None):
        self.dsn = dsn
        self.table = table
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.history = history
        self._buffer: list[pa.Table] = []
        self._poison = PoisonOnError()
        self._created = False

    @property
    def prefix(self) -> str:
        """Every gid of this worker starts with it (the job id is the run's, so runs never mix)."""
        return f"chaos:{self.job_id}:w{self.worker}:"

    def gid(self, checkpoint_id: int) -> str:
        return f"{self.prefix}c{checkpoint_id}"

    def _run(self, what: str, operation):  # type: ignore[no-untyped-def]
        def lost(error: Exception) -> None:
            if self.history is not None:
                self.history.append(Event.SINK_WRITE_FAILED, worker=self.worker, op=what, error=str(error)[:200])
        return with_retries(operation, lost)

    def _ensure_table(self, conn: psycopg.Connection) -> None:
        if not self._created:
            create_output(conn, self.table)
            self._created = True

    # -- writing -----------------------------------------------------------------------------
    def write(self, records: pa.Table) -> None:
        with self._poison.guard():
            if records.num_rows:
                self._buffer.append(records)

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        self.crash.hit("sink.prepare.before")
        gid = self.gid(checkpoint_id)
        rows = 0
        with self._poison.guard():
            if self._buffer:
                batches = self._buffer
                rows = sum(b.num_rows for b in batches)
                self._run("prepare", lambda: self._prepare(gid, checkpoint_id, batches))
                self._buffer = []
        self.crash.hit("sink.prepare.after")
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id, worker=self.worker,
                            payload={"gid": gid if rows else None, "rows": rows})

    def _prepare(self, gid: str, checkpoint_id: int, batches: list[pa.Table]) -> None:
        """One attempt, from the start: the server drops a transaction whose connection died."""
        with connect(self.dsn) as conn:
            self._ensure_table(conn)
            if self._prepared(conn, gid):
                return  # the last attempt's PREPARE landed, its answer did not
            conn.execute("BEGIN")
            with conn.cursor() as cur:
                columns = sql.SQL(", ").join(map(sql.Identifier, [*FIXED, "doc", "job", "worker", "checkpoint_id"]))
                with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(self.table), columns)) as copy:
                    for batch in batches:
                        fixed = [batch.column(name).to_pylist() for name in FIXED]
                        for i, doc in enumerate(documents(batch)):
                            copy.write_row([column[i] for column in fixed] + [doc, self.job_id, self.worker,
                                                                               checkpoint_id])
                cur.execute(sql.SQL("INSERT INTO {} (gid) VALUES (%s)").format(
                    sql.Identifier(commits_table(self.table))), (gid,))
                cur.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(gid)))

    # -- committing ----------------------------------------------------------------------------
    def commit(self, handle: CommitHandle) -> None:
        gid = handle.payload.get("gid")
        if gid is None:
            return  # an empty checkpoint prepared nothing
        self.crash.hit("sink.commit.before")
        self._run("commit", lambda: self._commit(gid))
        self.crash.hit("sink.commit.after")

    def _commit(self, gid: str) -> None:
        with connect(self.dsn) as conn:
            if self._prepared(conn, gid):
                conn.execute(sql.SQL("COMMIT PREPARED {}").format(sql.Literal(gid)))
            elif not self._committed(conn, gid):
                raise CommitError(f"{gid} is neither prepared nor committed: its prepared rows are lost")

    def _prepared(self, conn: psycopg.Connection, gid: str) -> bool:
        return conn.execute("SELECT 1 FROM pg_prepared_xacts WHERE gid = %s AND database = current_database()",
                            (gid,)).fetchone() is not None

    def _committed(self, conn: psycopg.Connection, gid: str) -> bool:
        try:
            found = conn.execute(sql.SQL("SELECT 1 FROM {} WHERE gid = %s").format(
                sql.Identifier(commits_table(self.table))), (gid,)).fetchone()
        except errors.UndefinedTable:
            return False
        return found is not None

    def abort(self, handle: CommitHandle) -> None:
        gid = handle.payload.get("gid")
        if gid is not None:
            self._run("abort", lambda: self._rollback([gid]))

    def _rollback(self, gids: list[str]) -> None:
        with connect(self.dsn) as conn:
            for gid in gids:
                if self._prepared(conn, gid):
                    conn.execute(sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid)))

    def recover(self, committed: list[CommitHandle]) -> None:
        """Commit the restored checkpoint's transactions, then roll back this worker's others."""
        self._buffer = []
        self._poison.clear()
        for handle in sorted(committed, key=lambda h: h.checkpoint_id):
            self.commit(handle)
        keep = {h.payload.get("gid") for h in committed}
        self._run("recover", lambda: self._rollback([g for g in self._own_prepared() if g not in keep]))

    def _own_prepared(self) -> list[str]:
        with connect(self.dsn) as conn:
            found = conn.execute("SELECT gid FROM pg_prepared_xacts WHERE database = current_database() "
                                 "AND starts_with(gid, %s) ORDER BY gid", (self.prefix,)).fetchall()
        return [gid for (gid,) in found]

    def close(self) -> None:
        self._buffer = []
