"""Checkpoint stores, one per durability profile (docs/guarantees.md, "Durability profiles").

- `in-memory`: a dict in the coordinator. A crash loses every checkpoint, which is the point: it
  is the profile whose guarantee is only best effort.
- `single-node-durable`: SQLite in WAL mode with `synchronous=FULL`: each save is one transaction,
  fsynced before `save` returns, so it survives a process crash (not the loss of the node).
- `distributed-durable`: PostgreSQL, reached over the network (through a Toxiproxy link in the
  testbed), so it survives losing the coordinator's host and can also be partitioned.

Every `save` is atomic: after a crash at any instant, `latest` returns the previous or the new
checkpoint, never a torn one. `latest` is the highest checkpoint id of a job.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from drivers.sdk.contracts import CommitHandle

T = TypeVar("T")

PROFILES = ("in-memory", "single-node-durable", "distributed-durable")


@dataclass(frozen=True)
class Checkpoint:
    job_id: str
    checkpoint_id: int
    positions: dict[str, dict[str, Any]]
    """Worker index (as a string: JSON object keys are strings) -> that worker's source positions."""
    handles: list[CommitHandle]
    """The prepared sink handles this checkpoint commits (and recovery re-commits)."""
    created_at: float
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Worker index -> that worker's operator state (event-time watermarks per split)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "checkpoint_id": self.checkpoint_id,
            "positions": self.positions,
            "handles": [h.model_dump(mode="json") for h in self.handles],
            "created_at": self.created_at,
            "state": self.state,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "Checkpoint":
        return cls(
            job_id=str(body["job_id"]),
            checkpoint_id=int(body["checkpoint_id"]),
            positions=dict(body["positions"]),
            handles=[CommitHandle.model_validate(h) for h in body["handles"]],
            created_at=float(body["created_at"]),
            state=dict(body.get("state", {})),
        )


class CheckpointStore(Protocol):
    def save(self, checkpoint: Checkpoint) -> None:
        """Persist atomically: after a crash at any instant, `latest` is the previous or this checkpoint."""

    def latest(self, job_id: str) -> Checkpoint | None:
        """The job's checkpoint with the highest id, or None if it has none."""

    def close(self) -> None: ...


_SCHEMA = ("CREATE TABLE IF NOT EXISTS checkpoints ("
           "job_id TEXT NOT NULL, checkpoint_id INTEGER NOT NULL, body {body} NOT NULL, "
           "PRIMARY KEY (job_id, checkpoint_id))")


class InMemoryStore:
    """Checkpoints in this process's memory: gone when it dies."""

    def __init__(self) -> None:
        self._latest: dict[str, Checkpoint] = {}
        self._lock = threading.Lock()

    def save(self, checkpoint: Checkpoint) -> None:
        # A copy through JSON, so later changes to the caller's dicts cannot alter a saved checkpoint.
        copy = Checkpoint.from_json(json.loads(json.dumps(checkpoint.as_json())))
        with self._lock:
            current = self._latest.get(checkpoint.job_id)
            if current is None or checkpoint.checkpoint_id >= current.checkpoint_id:
                self._latest[checkpoint.job_id] = copy

    def latest(self, job_id: str) -> Checkpoint | None:
        with self._lock:
            return self._latest.get(job_id)

    def close(self) -> None:
        pass


class SqliteStore:
    """A local file, fsynced on every save: survives a crash of the process, not of the node."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode (isolation_level=None): transactions are the explicit BEGIN/COMMIT below.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"{path}: SQLite refused WAL mode (got {mode!r})")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA.format(body="TEXT"))

    def save(self, checkpoint: Checkpoint) -> None:
        body = json.dumps(checkpoint.as_json(), separators=(",", ":"))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT OR REPLACE INTO checkpoints (job_id, checkpoint_id, body) VALUES (?, ?, ?)",
                                 (checkpoint.job_id, checkpoint.checkpoint_id, body))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def latest(self, job_id: str) -> Checkpoint | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM checkpoints WHERE job_id = ? ORDER BY checkpoint_id DESC LIMIT 1",
                                   (job_id,)).fetchone()
        return None if row is None else Checkpoint.from_json(json.loads(row[0]))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresStore:
    """PostgreSQL over the network: every operation is bounded in time, and retried for `retry_for` seconds.

    A failed connection or operation (`psycopg.OperationalError`) drops the connection; the next
    attempt reconnects. Each save is one INSERT ... ON CONFLICT statement in autocommit mode: one
    transaction in one round trip, so a retry after an unknown outcome is an idempotent upsert and
    the server never holds a half-done transaction for a client that vanished.
    """

    def __init__(self, dsn: str, *, retry_for: float = 60.0, op_timeout: float = 10.0, connect_timeout: int = 5):
        self._dsn = dsn
        self._retry_for = retry_for
        self._op_timeout = op_timeout
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._run(self._create_schema)

    def save(self, checkpoint: Checkpoint) -> None:
        def upsert(conn: psycopg.Connection) -> None:
            conn.execute("INSERT INTO checkpoints (job_id, checkpoint_id, body) VALUES (%s, %s, %s) "
                         "ON CONFLICT (job_id, checkpoint_id) DO UPDATE SET body = EXCLUDED.body",
                         (checkpoint.job_id, checkpoint.checkpoint_id, Jsonb(checkpoint.as_json())))

        self._run(upsert)

    def latest(self, job_id: str) -> Checkpoint | None:
        def query(conn: psycopg.Connection) -> Any:
            return conn.execute("SELECT body FROM checkpoints WHERE job_id = %s ORDER BY checkpoint_id DESC LIMIT 1",
                                (job_id,)).fetchone()

        row = self._run(query)
        return None if row is None else Checkpoint.from_json(row[0])

    def close(self) -> None:
        with self._lock:
            self._drop()

    @staticmethod
    def _create_schema(conn: psycopg.Connection) -> None:
        with conn.transaction():
            # Two coordinators creating the table at once would otherwise race on the catalog.
            conn.execute("SELECT pg_advisory_xact_lock(7242151)")
            conn.execute(_SCHEMA.format(body="JSONB"))

    def _run(self, operation: Callable[[psycopg.Connection], T]) -> T:
        retrying = Retrying(stop=stop_after_delay(self._retry_for), wait=wait_exponential(multiplier=0.2, max=2.0),
                            retry=retry_if_exception_type(psycopg.OperationalError), reraise=True)
        with self._lock:
            for attempt in retrying:
                with attempt:
                    try:
                        conn = self._connection()
                        with _deadline(conn, self._op_timeout):
                            return operation(conn)
                    except psycopg.OperationalError:
                        self._drop()
                        raise
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            timeout_ms = int(self._op_timeout * 1000)
            self._conn = psycopg.connect(self._dsn, connect_timeout=self._connect_timeout, autocommit=True,
                                         options=f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}")
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass


@contextmanager
def _deadline(conn: psycopg.Connection, seconds: float) -> Iterator[None]:
    """Fail a call on `conn` that is still blocked after `seconds`.

    A partition (Toxiproxy's blackhole) drops bytes but keeps the TCP connection open, so no
    server-side timeout fires and the client would wait forever. A timer shuts the socket down
    instead, and the blocked call fails with `psycopg.OperationalError`. The timer works on a
    duplicate of the descriptor, so it can never touch a descriptor number reused after close.
    """
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    timer = threading.Timer(seconds, _shutdown, (sock,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        sock.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def open_store(profile: str, *, sqlite_path: Path | None = None, dsn: str | None = None) -> CheckpointStore:
    """The store of a durability profile."""
    if profile == "in-memory":
        return InMemoryStore()
    if profile == "single-node-durable":
        if sqlite_path is None:
            raise ValueError("the single-node-durable profile needs sqlite_path")
        return SqliteStore(sqlite_path)
    if profile == "distributed-durable":
        if dsn is None:
            raise ValueError("the distributed-durable profile needs a PostgreSQL dsn")
        return PostgresStore(dsn)
    raise ValueError(f"unknown durability profile {profile!r} (profiles: {', '.join(PROFILES)})")
