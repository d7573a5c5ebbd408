"""A bounded, replayable PostgreSQL source: one table read by primary-key ranges as splits.

The ids `0..records-1` are cut into ranges of `SPLIT_IDS`; a worker owns the ranges whose index is
`worker` modulo `workers`, and its position is the next id of each range it owns, an exact
boundary, so a restore re-reads nothing twice and skips nothing. A poll reads on from the first
unfinished range in id order and stops where the records' schema version changes, so a sink sees
the schema evolve between batches, as behind a schema registry.

A lost connection (the `worker-postgres` link cut) is retried; the source says so in the history
(`source.disconnected`, then `source.reconnected` at the next successful read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from psycopg import sql

from chaos_postgres.database import FIXED, connect, to_arrow, with_retries
from drivers.sdk import CrashHook, Event, Positions, Settings, WorkerContext
from drivers.sdk.records import SCHEMA, schema_for

if TYPE_CHECKING:
    from drivers.sdk import History

SPLIT_IDS = 500


class PostgresBatchSource:
    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "PostgresBatchSource":
        return cls(settings["dsn"], settings["table"], int(settings["records"]), ctx.crash, ctx.history)

    def __init__(self, dsn: str, table: str, records: int, crash: CrashHook, history: History | None = None):
        self.dsn = dsn
        self.table = table
        self.records = records
        self.crash = crash
        self.history = history
        self.ranges: list[tuple[int, int]] = []
        self.next: dict[int, int] = {}
        self.disconnected = False

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        if not 0 <= worker < workers:
            raise ValueError(f"worker {worker} is not in 0..{workers - 1}")
        every = [(lo, min(lo + SPLIT_IDS, self.records)) for lo in range(0, self.records, SPLIT_IDS)]
        self.ranges = [r for i, r in enumerate(every) if i % workers == worker]
        positions = (start or {}).get("next", {})
        self.next = {lo: int(positions.get(str(lo), lo)) for lo, _ in self.ranges}

    def _current(self) -> tuple[int, int] | None:
        return next(((lo, hi) for lo, hi in self.ranges if self.next[lo] < hi), None)

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        current = self._current()
        if current is None:
            return SCHEMA.empty_table()
        lo, hi = current
        rows = with_retries(lambda: self._read(self.next[lo], hi, max_records), self._lost)
        if self.disconnected:
            self.disconnected = False
            if self.history is not None:
                self.history.append(Event.SOURCE_RECONNECTED, table=self.table)
        version = rows[0][-1] if rows else None
        batch = [row[:-1] for row in rows if row[-1] == version]
        self.next[lo] = batch[-1][0] + 1 if batch else hi
        if batch:
            self.crash.hit("source.poll.after")
        return to_arrow(batch, schema_for(version))

    def _read(self, first: int, end: int, limit: int) -> list[tuple[Any, ...]]:
        with connect(self.dsn) as conn:
            query = sql.SQL("SELECT {}, doc, schema_version FROM {} WHERE id >= %s AND id < %s ORDER BY id LIMIT %s")
            columns = sql.SQL(", ").join(map(sql.Identifier, FIXED))
            return conn.execute(query.format(columns, sql.Identifier(self.table)), (first, end, max(1, limit))).fetchall()

    def _lost(self, error: Exception) -> None:
        if not self.disconnected and self.history is not None:
            self.history.append(Event.SOURCE_DISCONNECTED, table=self.table, error=str(error)[:200])
        self.disconnected = True

    def snapshot_positions(self) -> Positions:
        return {"next": {str(lo): n for lo, n in self.next.items()}}

    def ack(self, positions: Positions) -> None:
        """Nothing to commit upstream: the checkpoint that holds the positions is the commit."""
        self.crash.hit("source.ack.before")

    def exhausted(self) -> bool:
        return self._current() is None

    def close(self) -> None:
        pass
