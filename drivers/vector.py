"""Vector sink: workload rows plus an embedding, appended to an embedded LanceDB table.

Experimental, best effort (the matrix row "any -> Vector sinks, any profile"). LanceDB runs in
process on a directory on disk: no server, no network. The embedding is `embed`, a deterministic
function of the payload that stands in for a model, so the testbed needs no weights and a checker
can recompute every stored vector from its payload.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import lancedb
import pyarrow as pa
from lancedb.table import Table

from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import CommitHandle, CrashHook
from drivers.sdk.records import SCHEMA

DIM = 16


def embed(payload: str, dim: int = DIM) -> list[float]:
    """A unit vector of `dim` floats derived from the payload alone: a stand-in for a model.

    The bytes of sha256(payload), then of sha256(payload + "#1"), "#2"... as needed, are scaled to
    [-1, 1] (0 -> -1, 255 -> 1; no byte maps to 0, so the norm is never 0) and L2-normalised.
    Equal payloads give equal vectors, on any machine, with no weights to download.
    """
    if dim < 1:
        raise ValueError(f"dim must be positive, not {dim}")
    raw = hashlib.sha256(payload.encode()).digest()
    while len(raw) < dim:
        raw += hashlib.sha256(f"{payload}#{len(raw) // 32}".encode()).digest()
    values = [b / 127.5 - 1.0 for b in raw[:dim]]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def vector_schema(dim: int = DIM) -> pa.Schema:
    """The stored schema: the workload's columns plus `vector`, a fixed-size list of float32."""
    return SCHEMA.append(pa.field("vector", pa.list_(pa.float32(), dim)))


class VectorSink:
    """Experimental, best effort: rows become visible in LanceDB at `prepare`; nothing is two-phase.

    `write` buffers. `prepare` appends the buffered rows, each with its `vector`, to the table
    (created on first use) and returns a handle; `commit` and `abort` have nothing left to do.
    A crash after the append and before the checkpoint is persisted makes the retry append the
    same rows again: duplicates, which best effort allows and the checker counts. Rows buffered
    but not yet prepared are lost on a crash. Columns beyond the workload's are not stored.
    """

    SINK = "vector"

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "VectorSink":
        return cls(Path(settings["db_path"]), settings["table_name"], ctx.job_id, ctx.worker, ctx.crash)

    def __init__(self, db_path: Path, table_name: str, job_id: str, worker: int, crash: CrashHook,
                 dim: int = DIM):
        self.db_path, self.table_name, self.dim = Path(db_path), table_name, dim
        self.job_id, self.worker, self.crash = job_id, worker, crash
        self._buffer: list[pa.Table] = []
        self._table: Table | None = None

    def write(self, records: pa.Table) -> None:
        if records.num_rows:
            self._buffer.append(records.select(SCHEMA.names).cast(SCHEMA))

    def _open(self) -> Table:
        if self._table is None:
            self.db_path.mkdir(parents=True, exist_ok=True)
            db = lancedb.connect(str(self.db_path))
            self._table = db.create_table(self.table_name, schema=vector_schema(self.dim),
                                          mode="create", exist_ok=True)
        return self._table

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        self.crash.hit("sink.prepare.before")
        rows = 0
        if self._buffer:
            data = pa.concat_tables(self._buffer)
            vectors = pa.array([embed(p, self.dim) for p in data.column("payload").to_pylist()],
                               type=pa.list_(pa.float32(), self.dim))
            self._open().add(data.append_column(vector_schema(self.dim).field("vector"), vectors))
            rows = data.num_rows
            self._buffer = []
        self.crash.hit("sink.prepare.after")
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                            worker=self.worker, payload={"rows": rows, "table": self.table_name})

    def commit(self, handle: CommitHandle) -> None:
        """Nothing to do: the rows became visible at prepare."""
        if handle.sink != self.SINK:
            raise ValueError(f"not a {self.SINK} handle: {handle.sink}")

    def abort(self, handle: CommitHandle) -> None:
        """Nothing to undo: best effort does not take back rows that are already visible."""

    def recover(self, committed: list[CommitHandle]) -> None:
        """Committed rows are already in the table; only the unprepared buffer is dropped."""
        self._buffer = []

    def close(self) -> None:
        self._buffer = []
        self._table = None

