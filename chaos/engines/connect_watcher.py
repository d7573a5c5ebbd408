"""Watches a Kafka Connect pipeline from outside and writes what it sees to the run's history.

Nothing inside a black box reports to the history, so this thread does, polling every POLL:
- a worker is ready once it serves REST requests and every task of the connector runs (written
  on the worker's behalf, with its pid, for the supervisor);
- the connector is created once every worker first serves;
- a task that Connect reports FAILED is written with its cause (Connect never restarts it);
- each new snapshot of the output table is a commit, decided at its own timestamp, whose
  positions are the connector's consumer group's offsets.

Every read is direct, never through a faulted link.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from confluent_kafka import Consumer, TopicPartition

from chaos.engines.base import Status
from chaos.env.kafka_clients import client_config
from chaos.sides.iceberg import catalog_uri, close_catalog, identifier, open_catalog
from drivers.sdk.events import Event
from drivers.sdk.history import History

if TYPE_CHECKING:
    from chaos.engines.kafka_connect import KafkaConnectEngine

POLL = 0.5
"""Seconds between the watcher's looks at the workers, the connector and the output."""
HALT_GRACE = 10.0
"""Seconds every task must have stayed FAILED before the pipeline counts as stopped for good."""

log = logging.getLogger("chaos.engines.connect")


class ConnectWatcher:
    """Observes the black box from outside and writes what it sees to the history."""

    def __init__(self, engine: "KafkaConnectEngine", pid: Callable[[str], int | None]):
        self.engine = engine
        self.status: Status | None = None
        """The last commit seen, with the group's positions and whether the hand-over has settled."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connect-watcher", daemon=True)
        self.pid = pid
        run_dir = engine.context.run_dir
        self.histories = {name: History(run_dir / "history.jsonl", source=name) for name in engine.processes}
        self.history = engine.context.history
        self.announced: dict[str, int] = {}
        """The pid of each worker's incarnation whose readiness was written."""
        self.created = False
        self.failed: set[tuple[Any, str]] = set()
        """(task, cause) of each failed task already written."""
        self.sequence: int | None = None
        """The sequence number of the last snapshot seen."""
        self.halted = False
        """Every task of the connector has failed, for HALT_GRACE: nothing will run again."""
        self.failed_since: float | None = None
        self.handed_over_at: int | None = None
        """The control topic's end when the group's offsets first covered the input."""
        self._clients: dict[str, Consumer] = {}
        self._catalog: Any = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._close()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                self._step()
            except Exception as e:  # noqa: BLE001 - a black box under faults: look again next time
                log.info("connect watcher: %s", e)

    def _step(self) -> None:
        engine = self.engine
        serving = [name for name, rest in engine.rest.items() if self.pid(name) is not None and rest.up()]
        if not self.created:
            if len(serving) < len(engine.processes):
                return
            engine.rest[serving[0]].put_config(engine.name, engine.config)
            self.created = True
            self.history.append(Event.ENGINE_CONNECTOR_CREATED, connector=engine.name, kind=engine.connector.name,
                                version=engine.connector.version)
        status = engine.rest[serving[0]].status(engine.name) if serving else None
        tasks = (status or {}).get("tasks", [])
        for task in tasks:
            if task.get("state") == "FAILED":
                self._report_failed(task)
        if tasks and all(t.get("state") == "FAILED" for t in tasks):
            self.failed_since = self.failed_since or time.monotonic()
        else:
            self.failed_since = None
        # A rebalance (a worker coming back) may start a failed task again: only a lasting halt counts.
        self.halted = self.failed_since is not None and time.monotonic() - self.failed_since >= HALT_GRACE
        running = len(tasks) == len(engine.processes) and all(t.get("state") == "RUNNING" for t in tasks)
        for name in serving:
            pid = self.pid(name)
            if running and pid is not None and self.announced.get(name) != pid:
                self.announced[name] = pid
                self.histories[name].append(Event.ENGINE_WORKER_READY, pid=pid,
                                            tasks=[t.get("worker_id") for t in tasks])
        self._observe_commits()

    def _report_failed(self, task: dict[str, Any]) -> None:
        """Connect never restarts a failed task by itself: the pipeline stays stopped, and says why."""
        trace = str(task.get("trace", "")).strip()
        causes = [line for line in trace.splitlines() if line.startswith("Caused by:")]
        why = (causes[-1] if causes else trace.splitlines()[0] if trace else "")[:300]
        key = (task.get("id"), why)
        if key not in self.failed:
            self.failed.add(key)
            self.history.append(Event.ENGINE_TASK_FAILED, task=task.get("id"), worker=task.get("worker_id"), why=why)

    def _observe_commits(self) -> None:
        """Each new snapshot of the output table is a commit, whose positions are the group's offsets."""
        positions = self._group_offsets()
        for snapshot in self._new_snapshots():
            self.sequence = snapshot.sequence_number
            summary = snapshot.summary.additional_properties if snapshot.summary is not None else {}
            self.history.append(Event.ENGINE_COMMIT_SEEN, snapshot_id=snapshot.snapshot_id, sequence=self.sequence,
                                commit_id=summary.get("kafka.connect.commit-id"),
                                added_records=summary.get("added-records"))
            # Decided when the catalog took the snapshot: its own timestamp, not when the watcher looked.
            self.history.append(Event.CHECKPOINT_PERSISTED, checkpoint_id=self.sequence, positions={"0": positions},
                                observed=True, decided_at=snapshot.timestamp_ms / 1000)
            self.history.append(Event.CHECKPOINT_COMMITTED, checkpoint_id=self.sequence, observed=True)
        self.status = {"checkpoint_id": self.sequence, "positions": {"0": positions},
                       "settled": self._settled(positions),
                       **({"halted": "every task of the connector failed, and Connect never restarts a failed "
                                     "task"} if self.halted else {})}

    def _settled(self, positions: dict[int, int]) -> bool:
        """The group has handed over the whole input, and the commit coordinator has since consumed
        its control topic past where the topic ended then: the hand-over has been through a commit."""
        ends = self._ends()
        if any(positions.get(p, 0) < end for p, end in ends.items() if end > 0):
            self.handed_over_at = None
            return False
        consumed, end = self._control_offsets()
        if self.handed_over_at is None:
            self.handed_over_at = end
        return consumed >= self.handed_over_at

    # --- reading from outside, directly (never through the faulted links) ---

    def _consumer(self, group: str | None = None) -> Consumer:
        """A long-lived client that reads `group`'s committed offsets (by default the connector's
        consumer group) without ever joining it; one per group for the whole run."""
        group = group or f"connect-{self.engine.name}"
        if group not in self._clients:
            self._clients[group] = Consumer(client_config(self.engine.context.env.bootstrap_direct, **{
                "group.id": group, "enable.auto.commit": False}))
        return self._clients[group]

    def _input(self) -> list[TopicPartition]:
        topic = str(self.engine.source.settings()["topic"])
        return [TopicPartition(topic, p) for p in range(self.engine.context.experiment.workload.partitions)]

    def _group_offsets(self) -> dict[int, int]:
        committed = self._consumer().committed(self._input(), timeout=5)
        return {tp.partition: max(tp.offset, 0) for tp in committed}

    def _ends(self) -> dict[int, int]:
        return {tp.partition: self._consumer().get_watermark_offsets(tp, timeout=5)[1] for tp in self._input()}

    def _control_offsets(self) -> tuple[int, int]:
        """(where the commit coordinator's group stands, the end) on the control topic."""
        control = TopicPartition(self.engine.control_topic, 0)
        group = self._consumer(f"connect-{self.engine.name}-coord")
        committed = group.committed([control], timeout=5)[0].offset
        return max(committed, 0), group.get_watermark_offsets(control, timeout=5)[1]

    def _new_snapshots(self) -> list[Any]:
        """The output table's snapshots newer than the last one seen, oldest first."""
        from pyiceberg.exceptions import NoSuchTableError

        settings = self.engine.sink_settings
        if self._catalog is None:
            self._catalog = open_catalog(catalog_uri(self.engine.context, harness=True),
                                         Path(str(settings["warehouse"])))
        try:
            table = self._catalog.load_table(identifier(str(settings["table_name"])))
        except NoSuchTableError:
            return []
        seen = self.sequence or 0
        return sorted((s for s in table.snapshots() if (s.sequence_number or 0) > seen),
                      key=lambda s: s.sequence_number)

    def _close(self) -> None:
        for client in self._clients.values():
            client.close()
        if self._catalog is not None:
            close_catalog(self._catalog)
        for history in self.histories.values():
            history.close()

