"""A worker: reads its share of the source, writes the sink, and takes part in checkpoint rounds.

After (re)start it says hello to the coordinator and restores what the last persisted checkpoint
says: the sink recovers (re-commits that checkpoint's handles, removes everything else it staged)
and the source resumes from the checkpoint's positions. A worker that loses its coordinator
(connection closed, or no heartbeat for a while) exits, and its supervisor restarts it: a failover
from the last checkpoint, as in Flink.

Run as `python -m drivers.runtime.worker JOB.json INDEX`.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from tenacity import retry, stop_after_delay, wait_exponential

from drivers.runtime.config import JobConfig
from drivers.runtime.factory import create_late_sink, create_sink, create_source
from drivers.runtime.protocol import Connection, Message
from drivers.sdk.contracts import SPLIT_COLUMN, CommitHandle, Positions
from drivers.sdk.crashpoints import MARKER_DIR, CrashPoints
from drivers.sdk.events import Event
from drivers.sdk.history import History
from drivers.sdk.schema_watch import SchemaWatch

COORDINATOR_LOST_EXIT = 75
_EMPTY = pa.table({})


class CoordinatorLost(Exception):
    pass


class Worker:
    def __init__(self, config: JobConfig, index: int):
        self.config = config
        self.index = index
        self.history = History(config.history_path, source=f"worker-{index}")
        self.crash = CrashPoints(
            config.crash_points.get(f"worker-{index}", {}), Path(config.run_dir) / MARKER_DIR, f"worker-{index}",
            on_fire=lambda point, hit: self.history.append(Event.CRASH, process=f"worker-{index}", point=point, hit=hit))
        self.source = create_source(config, index, self.crash, self.history)
        self.sink = create_sink(config, index, self.crash, self.source, self.history)
        self.late_sink = (create_late_sink(config, index, self.crash, self.source, self.history)
                          if config.allowed_lateness is not None else None)
        self.watermarks: dict[str, int] = {}  # split -> highest event time seen (ms): checkpointed state
        self.pending: list[tuple[CommitHandle, Positions]] = []
        self.stopping = False
        self.last_seen = time.monotonic()
        self.records = 0
        self.schema_watch = SchemaWatch(self.history, index, "records", ignore=frozenset({SPLIT_COLUMN}))
        self.restored_checkpoint: int | None = None
        self.backlog: list[Message] = []
        self.conn = self._connect()

    @retry(wait=wait_exponential(multiplier=0.2, max=2), stop=stop_after_delay(120), reraise=True)
    def _connect(self) -> Connection:
        conn = Connection.connect("127.0.0.1", self.config.worker_coordinator_port)
        conn.send({"type": "hello", "worker": self.index})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            messages = conn.receive(0.2)
            for i, message in enumerate(messages):
                if message["type"] == "restore":
                    self._restore(message)
                    self.backlog = messages[i + 1:]
                    return conn
            if conn.closed:
                break
        conn.close()
        raise CoordinatorLost("no restore message from the coordinator")

    def _restore(self, message: Message) -> None:
        handles = [CommitHandle.model_validate(h) for h in message["handles"]]
        self.sink.recover([h for h in handles if not _is_late(h)])
        if self.late_sink is not None:
            self.late_sink.recover([h for h in handles if _is_late(h)])
        removed = getattr(self.sink, "orphans_removed", 0)
        if removed:  # what a failed incarnation left staged, rolled back: evidence of a failed write
            self.history.append(Event.SINK_ROLLBACK, worker=self.index, removed=removed)
        self.watermarks = dict(message.get("state", {}).get("watermarks", {}))
        # No ack here: a sink that commits offsets in its own transaction (Kafka to Kafka) may have had
        # that transaction aborted, and acking the checkpoint's positions would skip its records.
        self.source.open(self.index, self.config.workers, message["positions"])
        # Where the source resumed, next to where the checkpoint says: a source that cannot rewind (a live
        # stream) resumes past it, and the harness needs the gap to know what the restored pipeline never saw.
        self.history.append(Event.WORKER_RESTORED, worker=self.index, checkpoint_id=message["checkpoint_id"],
                            recommitted=len(handles), pid=os.getpid(), positions=message["positions"],
                            resumed=self.source.snapshot_positions())
        self.restored_checkpoint = message["checkpoint_id"]

    def run(self) -> int:
        if self.restored_checkpoint is not None:
            self.conn.send({"type": "committed", "checkpoint_id": self.restored_checkpoint})
        for message in self.backlog:
            self._dispatch(message)
        started = time.monotonic()
        while not self.stopping:
            rate = self.config.max_rate
            throttled = rate is not None and self.records >= rate * (time.monotonic() - started)
            throttled = throttled or getattr(self.sink, "awaiting_commit", False)
            rows = self.source.poll(100 if rate else 500, 0.05) if not throttled else _EMPTY
            if rows.num_rows:
                self._write(rows)
                self.records += rows.num_rows
            for message in self.conn.receive(0 if rows.num_rows else 0.02):
                self.last_seen = time.monotonic()
                self._dispatch(message)
            if self.conn.closed or time.monotonic() - self.last_seen > self.config.heartbeat_timeout:
                self.history.append(Event.WORKER_COORDINATOR_LOST, worker=self.index)
                return COORDINATOR_LOST_EXIT
        self.source.close()
        self.sink.close()
        if self.late_sink is not None:
            self.late_sink.close()
        self.history.append(Event.WORKER_STOP, worker=self.index, records=self.records)
        return 0

    def _write(self, rows: pa.Table) -> None:
        self.schema_watch.see(rows.schema, rows["id"][0].as_py())
        if self.late_sink is None:
            self.sink.write(rows)
            return
        on_time, late = self._route(rows)
        if on_time.num_rows:
            self.sink.write(on_time)
        if late.num_rows:
            self.late_sink.write(late)

    def _route(self, rows: pa.Table) -> tuple[pa.Table, pa.Table]:
        """Event time against each split's watermark (the highest event time seen in that split): a
        record more than `allowed_lateness` behind it is late, and goes to the side output."""
        assert self.config.allowed_lateness is not None
        allowed = round(self.config.allowed_lateness * 1000)
        late = []
        for split, event_time in zip(rows[SPLIT_COLUMN].to_pylist(), rows["event_time"].to_pylist()):
            mark = self.watermarks.get(split)
            late.append(mark is not None and event_time < mark - allowed)
            if mark is None or event_time > mark:
                self.watermarks[split] = event_time
        mask = pa.array(late, pa.bool_())
        rows = rows.drop_columns([SPLIT_COLUMN])
        return rows.filter(pc.invert(mask)), rows.filter(mask)

    def _dispatch(self, message: Message) -> None:
        kind = message["type"]
        if kind == "checkpoint":
            self._prepare(int(message["checkpoint_id"]))
        elif kind == "commit":
            self._commit(int(message["checkpoint_id"]))

    def _prepare(self, checkpoint_id: int) -> None:
        positions = self.source.snapshot_positions()
        if hasattr(self.sink, "attach_offsets"):
            self.sink.attach_offsets(positions)  # consume-transform-produce: offsets ride in the sink's transaction
        handle = self.sink.prepare(checkpoint_id)
        self.pending.append((handle, positions))
        if self.late_sink is not None:
            late = self.late_sink.prepare(checkpoint_id)
            self.pending.append((late.model_copy(update={"payload": {**late.payload, "output": "late"}}), positions))
        reply: dict[str, Any] = {
            "type": "prepared", "checkpoint_id": checkpoint_id, "positions": positions,
            "handles": [h.model_dump(mode="json") for h, _ in self.pending],
            "exhausted": self.source.exhausted(), "state": {"watermarks": dict(self.watermarks)},
        }
        self.conn.send(reply)

    def _commit(self, checkpoint_id: int) -> None:
        due = [(h, p) for h, p in self.pending if h.checkpoint_id <= checkpoint_id]
        if not due:
            return
        for handle, _ in due:
            sink = self.late_sink if _is_late(handle) else self.sink
            assert sink is not None
            sink.commit(handle)
        self.pending = [(h, p) for h, p in self.pending if h.checkpoint_id > checkpoint_id]
        self.source.ack(due[-1][1])
        self.conn.send({"type": "committed", "checkpoint_id": checkpoint_id})


def _is_late(handle: CommitHandle) -> bool:
    return handle.payload.get("output") == "late"


def main(argv: list[str]) -> int:
    worker = Worker(JobConfig.load(argv[1]), int(argv[2]))

    def stop(signum: int, frame: object) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
