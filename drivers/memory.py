"""In-memory stream and sink: the best-effort row of the matrix, with no durability at all.

`MemoryStreamSource` behaves like a live feed (a socket, a sensor): records arrive on a clock
whether or not anyone is reading, and nothing can be read twice. Its positions are reported so a
checkpoint can carry them, but `open` cannot rewind to them. After a restart the source resumes
with the record that is due *now* on the stream's clock; what came due while the worker was down
is lost. The stream's clock starts at `started_at` (wall-clock seconds), which the job's settings
carry (the run's start), so that a restarted process knows what "now" means on the stream.

Like a stream behind a schema registry, the source hands out each record under its own schema
version (`workload.schema_change_at`), one version per batch, so the sink sees the schema evolve
between writes. Asked for splits (`with_split`), it tags each record with its worker's share, the
one split it reads, so that the worker's per-split watermark routes late records.

`MemorySink` keeps committed rows in process memory and writes them out only at a graceful
`close`: a crash loses them. That is exactly the best-effort promise, and the checker counts it.
Batches of different schema versions are kept as they came and dumped under their unified schema.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from drivers.parquet_files import write_durably
from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.contracts import SPLIT_COLUMN, CommitHandle, CrashHook, Positions
from drivers.sdk.records import SCHEMA, Record, Workload, generate, schema_for


def _table(batch: list[Record]) -> pa.Table:
    """One batch, all of one schema version, under that version's schema."""
    version = batch[0].version if batch else None
    return pa.Table.from_pylist([r.fields() for r in batch], schema=schema_for(version))


def split_of(worker: int) -> str:
    """The one split a worker reads (its share of the ids): the same after every restart of it."""
    return f"w{worker}"


class MemoryStreamSource:
    """A paced, non-replayable stream of this worker's share of the seeded workload."""

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "MemoryStreamSource":
        change, every = settings.get("schema_change_at"), settings.get("late_every")
        return cls(int(settings["records"]), float(settings["rate"]), int(settings["keys"]),
                   int(settings["payload_size"]), int(settings["seed"]), ctx.crash,
                   started_at=float(settings["started_at"]),
                   schema_change_at=None if change is None else int(change),
                   late_every=None if every is None else int(every), lateness=float(settings.get("lateness") or 0.0),
                   with_split=ctx.with_split)

    def __init__(self, records: int, rate: float, keys: int, payload_size: int, seed: int,
                 crash: CrashHook, started_at: float | None = None, *, schema_change_at: int | None = None,
                 late_every: int | None = None, lateness: float = 0.0, with_split: bool = False):
        self.spec = Workload(records=records, rate=rate, keys=keys, payload_size=payload_size,
                             schema_change_at=schema_change_at, late_every=late_every, lateness=lateness)
        self.seed = seed
        self.crash = crash
        self.started_at = started_at
        self.with_split = with_split  # tag each record with its split, for per-split watermarks
        self.skipped = 0
        """Where a restart resumed: this incarnation hands out none of the records before it."""
        self._anchor = 0.0
        self._rate = rate
        self._total = 0
        self._next = 0
        self._changes_at = 0
        """Index in this worker's share of its first record under the new schema version."""
        self._split = split_of(0)
        self._records: Iterator[Record] = iter(())

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        """Begin this worker's share (ids with `id % workers == worker`) at `rate / workers` per second.

        A fresh open (`start` None) begins with the first record, however late the worker starts.
        A restart (`start` given) ignores the positions in it, since they cannot be replayed, and
        begins at the latest record already due (the one "arriving now"); that needs the stream's
        clock, so `started_at` is required.
        """
        if not 0 <= worker < workers:
            raise ValueError(f"worker {worker} is not in 0..{workers - 1}")
        if start is not None and self.started_at is None:
            raise ValueError("a restarted MemoryStreamSource needs started_at (the stream's clock) "
                             "to know which record is due now; without it, it would replay")
        self._anchor = self.started_at if self.started_at is not None else time.time()
        self._rate = self.spec.rate / workers
        self._total = len(range(worker, self.spec.records, workers))
        change = self.spec.records if self.spec.schema_change_at is None else self.spec.schema_change_at
        self._changes_at = len(range(worker, min(change, self.spec.records), workers))
        self._split = split_of(worker)
        share = (r for r in generate(self.spec, self.seed) if r.id % workers == worker)
        self._next = 0 if start is None else max(0, self._due(time.time()) - 1)
        self.skipped = self._next
        self._records = itertools.islice(share, self._next, None)

    def _due(self, now: float) -> int:
        """How many of this worker's records have come due by `now` (record i at anchor + i/rate)."""
        if now < self._anchor:
            return 0
        return min(self._total, math.floor((now - self._anchor) * self._rate) + 1)

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        """What is due (up to `max_records`), waiting up to `timeout` for the next record. A batch
        stops where the schema version changes, so that each batch has one schema."""
        deadline = time.monotonic() + timeout
        while True:
            available = self._due(time.time()) - self._next
            if available > 0 or self.exhausted():
                break
            wait = deadline - time.monotonic()
            if wait <= 0:
                return SCHEMA.empty_table()
            next_due = self._anchor + self._next / self._rate
            time.sleep(max(0.0, min(wait, next_due - time.time())) + 0.0005)
        count = min(available, max_records)
        if self._next < self._changes_at:
            count = min(count, self._changes_at - self._next)
        batch = list(itertools.islice(self._records, count))
        self._next += len(batch)
        self.crash.hit("source.poll.after")
        table = _table(batch)
        if self.with_split:
            table = table.append_column(SPLIT_COLUMN, pa.array([self._split] * table.num_rows, pa.string()))
        return table

    def snapshot_positions(self) -> Positions:
        return {"next": self._next}

    def ack(self, positions: Positions) -> None:
        """Nothing to commit: a live stream does not keep what it sent."""
        self.crash.hit("source.ack.before")

    def exhausted(self) -> bool:
        return self._next >= self._total

    def close(self) -> None:
        self._records = iter(())


class MemorySink:
    """Rows live in memory; `commit` moves a checkpoint's rows to the committed list.

    `close` dumps the committed rows to `dump_path` (durably) so a checker can read what the sink
    held at a graceful stop. After a crash, the rows are gone; a re-commit whose rows were lost
    adds their count to `lost_rows` instead of failing, since best effort promises nothing more.
    """

    SINK = "memory"

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> "MemorySink":
        return cls(Path(settings["output_dir"]) / f"memory-sink-w{ctx.worker}.parquet", ctx.crash, ctx.job_id, ctx.worker)

    def __init__(self, dump_path: Path, crash: CrashHook, job_id: str = "memory", worker: int = 0):
        self.dump_path = Path(dump_path)
        self.crash = crash
        self.job_id = job_id
        self.worker = worker
        self.lost_rows = 0
        self.committed: list[pa.Table] = []
        self._buffer: list[pa.Table] = []
        self._prepared: dict[int, list[pa.Table]] = {}
        self._committed_ids: set[int] = set()

    def write(self, records: pa.Table) -> None:
        if records.num_rows:
            self._buffer.append(records)

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        self.crash.hit("sink.prepare.before")
        tables, self._buffer = self._buffer, []
        self._prepared[checkpoint_id] = self._prepared.get(checkpoint_id, []) + tables
        rows = sum(t.num_rows for t in self._prepared[checkpoint_id])
        self.crash.hit("sink.prepare.after")
        return CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                            worker=self.worker, payload={"rows": rows})

    def commit(self, handle: CommitHandle) -> None:
        if handle.sink != self.SINK:
            raise ValueError(f"not a {self.SINK} handle: {handle.sink}")
        if handle.checkpoint_id in self._committed_ids:
            return
        self.crash.hit("sink.commit.before")
        tables = self._prepared.pop(handle.checkpoint_id, None)
        if tables is None:
            self.lost_rows += int(handle.payload.get("rows", 0))
        else:
            self.committed.extend(tables)
        self._committed_ids.add(handle.checkpoint_id)
        self.crash.hit("sink.commit.after")

    def abort(self, handle: CommitHandle) -> None:
        self._prepared.pop(handle.checkpoint_id, None)

    def recover(self, committed: list[CommitHandle]) -> None:
        """Commit what survived in memory (nothing, after a real restart), then drop the rest."""
        for handle in committed:
            self.commit(handle)
        self._prepared.clear()
        self._buffer = []

    def committed_table(self) -> pa.Table:
        """Everything committed, under the schema that unifies its batches (which may span a schema
        change): a dropped column null after the drop, an added one before it, a widened one widened."""
        if not self.committed:
            return SCHEMA.empty_table()
        return pa.concat_tables(self.committed, promote_options="permissive")

    def close(self) -> None:
        """A graceful stop: write what was committed, so it outlives the process."""
        write_durably(self.committed_table(), self.dump_path.parent, self.dump_path.name)
        self._buffer = []
        self._prepared.clear()
