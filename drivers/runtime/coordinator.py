"""The checkpoint coordinator: triggers checkpoint rounds, persists them, then starts the commit phase.

A round N: every worker snapshots its source positions and prepares its sink (pre-commit), and
replies with its positions and pending handles; the coordinator persists checkpoint N in the
store of the durability profile, and only then tells the workers to commit. A round that cannot
finish (a worker is lost, or it times out) is abandoned: its handles stay pending in the workers
and ride along with the next round. On start, the last persisted checkpoint is what every
(re)connecting worker restores and re-commits.

Run as `python -m drivers.runtime.coordinator JOB.json`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.runtime.config import JobConfig
from drivers.runtime.protocol import Connection, Message
from drivers.runtime.stores import Checkpoint, open_store
from drivers.sdk.contracts import CommitHandle
from drivers.sdk.crashpoints import MARKER_DIR, CrashPoints
from drivers.sdk.events import Event
from drivers.sdk.history import History

HEARTBEAT_SECONDS = 0.1
"""How often the coordinator pings each worker. Often enough that a fault on the coordinator link
meets traffic within its first 0.1 s: a reset or a cut that only acts on data in flight (Toxiproxy's
reset_peer) is then no matter of luck, and neither is a shrink that shortens one."""


@dataclass
class Round:
    checkpoint_id: int
    started: float
    prepared: dict[int, Message] = field(default_factory=dict)


class Coordinator:
    def __init__(self, config: JobConfig):
        self.config = config
        self.history = History(config.history_path, source="coordinator")
        self.crash = CrashPoints(
            config.crash_points.get("coordinator", {}), Path(config.run_dir) / MARKER_DIR, "coordinator",
            on_fire=lambda point, hit: self.history.append(Event.CRASH, process="coordinator", point=point, hit=hit))
        self.store = open_store(config.profile, sqlite_path=Path(config.sqlite_path) if config.sqlite_path else None,
                                dsn=config.postgres_dsn)
        self.last = self.store.latest(config.job_id)
        # Ids are never reused for a job: after losing an in-memory store, start past any old ones.
        fresh = int(time.time() * 1000) if config.profile == "in-memory" else 1
        self.next_id = self.last.checkpoint_id + 1 if self.last else fresh
        self.workers: dict[int, Connection] = {}
        self.unidentified: list[Connection] = []
        self.round: Round | None = None
        self.last_round_end = time.monotonic()
        self.last_ping = 0.0
        self.committed_by: dict[int, set[int]] = {}
        self.exhausted_at: dict[int, bool] = {}
        self.stopping = False

    def run(self) -> None:
        # Bind first, then publish: a port chosen in advance could be taken in between by any
        # outgoing connection on the machine. The harness points the workers' link at this one.
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        self.history.append(Event.COORDINATOR_START, restored=self.last.checkpoint_id if self.last else None,
                            port=listener.getsockname()[1], pid=os.getpid())
        while not self.stopping:
            readable, _, _ = select.select([listener], [], [], 0.02)
            if readable:
                sock, _ = listener.accept()
                self.unidentified.append(Connection(sock))
            self._serve()
            now = time.monotonic()
            if now - self.last_ping >= HEARTBEAT_SECONDS:
                self._broadcast({"type": "ping"})
                self.last_ping = now
            self._advance_round(now)
        listener.close()
        self.store.close()
        self.history.append(Event.COORDINATOR_STOP)

    def _serve(self) -> None:
        for conn in list(self.unidentified):
            for message in conn.receive(0):
                if message["type"] == "hello":
                    self.unidentified.remove(conn)
                    self._welcome(int(message["worker"]), conn)
                    break
            if conn.closed and conn in self.unidentified:
                self.unidentified.remove(conn)
        for worker, conn in list(self.workers.items()):
            for message in conn.receive(0):
                self._handle(worker, message)
            if conn.closed:
                self._lose(worker, "connection closed")

    def _welcome(self, worker: int, conn: Connection) -> None:
        """A (re)started worker: tell it what to restore, and what to re-commit, from the last checkpoint."""
        if worker in self.workers:
            self.workers.pop(worker).close()
        if self.round is not None:
            self._abandon(f"worker {worker} rejoined")
        restore: dict[str, Any] = {"type": "restore", "checkpoint_id": None, "positions": None, "handles": [],
                                   "state": {}}
        if self.last:
            restore.update(
                checkpoint_id=self.last.checkpoint_id,
                positions=self.last.positions.get(str(worker)),
                state=self.last.state.get(str(worker), {}),
                handles=[h.model_dump(mode="json") for h in self.last.handles if h.worker == worker])
        try:
            conn.send(restore)
        except OSError:
            return
        self.workers[worker] = conn
        self.history.append(Event.COORDINATOR_WORKER_JOINED, worker=worker, restore=restore["checkpoint_id"])

    def _lose(self, worker: int, why: str) -> None:
        self.workers.pop(worker).close()
        self.history.append(Event.COORDINATOR_WORKER_LOST, worker=worker, why=why)
        if self.round is not None:
            self._abandon(f"worker {worker} lost")

    def _handle(self, worker: int, message: Message) -> None:
        kind = message["type"]
        if kind == "prepared" and self.round and message["checkpoint_id"] == self.round.checkpoint_id:
            self.round.prepared[worker] = message
        elif kind == "committed":
            self._record_commit(worker, int(message["checkpoint_id"]))

    def _advance_round(self, now: float) -> None:
        if self.round is None:
            ready = len(self.workers) == self.config.workers
            if ready and now - self.last_round_end >= self.config.checkpoint_interval:
                self._start_round(now)
            return
        if len(self.round.prepared) == self.config.workers:
            self._complete_round()
        elif now - self.round.started > self.config.checkpoint_timeout:
            self._abandon("timed out")

    def _start_round(self, now: float) -> None:
        self.round = Round(self.next_id, now)
        self.next_id += 1
        self._broadcast({"type": "checkpoint", "checkpoint_id": self.round.checkpoint_id})

    def _abandon(self, why: str) -> None:
        assert self.round is not None
        self.history.append(Event.CHECKPOINT_ABANDONED, checkpoint_id=self.round.checkpoint_id, why=why)
        self.round = None
        self.last_round_end = time.monotonic()

    def _complete_round(self) -> None:
        assert self.round is not None
        prepared = self.round.prepared
        checkpoint = Checkpoint(
            job_id=self.config.job_id,
            checkpoint_id=self.round.checkpoint_id,
            positions={str(w): m["positions"] for w, m in sorted(prepared.items())},
            handles=[CommitHandle.model_validate(h) for w, m in sorted(prepared.items()) for h in m["handles"]],
            created_at=time.time(),
            state={str(w): m.get("state", {}) for w, m in sorted(prepared.items())},
        )
        self.exhausted_at[checkpoint.checkpoint_id] = all(m.get("exhausted", False) for m in prepared.values())
        self.crash.hit("coordinator.persist.before")
        self.store.save(checkpoint)
        self.last = checkpoint
        self.history.append(Event.CHECKPOINT_PERSISTED, checkpoint_id=checkpoint.checkpoint_id,
                            handles=len(checkpoint.handles), positions=checkpoint.positions)
        self.crash.hit("coordinator.persist.after")
        self.round = None
        self.last_round_end = time.monotonic()
        self.crash.hit("coordinator.commit.before")
        for i, worker in enumerate(sorted(self.workers)):
            self._send(worker, {"type": "commit", "checkpoint_id": checkpoint.checkpoint_id})
            if i == 0:
                self.crash.hit("coordinator.commit.mid")
        self.crash.hit("coordinator.commit.after")

    def _record_commit(self, worker: int, checkpoint_id: int) -> None:
        done = self.committed_by.setdefault(checkpoint_id, set())
        done.add(worker)
        if len(done) < self.config.workers or not self.last or self.last.checkpoint_id != checkpoint_id:
            return
        self.history.append(Event.CHECKPOINT_COMMITTED, checkpoint_id=checkpoint_id)
        status = {"checkpoint_id": checkpoint_id, "positions": self.last.positions,
                  "exhausted": self.exhausted_at.get(checkpoint_id, False)}
        tmp = self.config.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, self.config.status_path)

    def _send(self, worker: int, message: Message) -> None:
        conn = self.workers.get(worker)
        if conn is None:
            return
        try:
            conn.send(message, timeout=5)
        except OSError:
            self._lose(worker, "send failed")

    def _broadcast(self, message: Message) -> None:
        for worker in list(self.workers):
            self._send(worker, message)


def main(argv: list[str]) -> int:
    coordinator = Coordinator(JobConfig.load(argv[1]))

    def stop(signum: int, frame: object) -> None:
        coordinator.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    coordinator.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
