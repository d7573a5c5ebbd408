"""The `command` engine: the user's own pipeline, given as processes to start (`pipeline.commands`).

Each command is one supervised process (`command-0`, `command-1`, ...), started from its argv with
the testbed's addresses filled in (`drivers.engines.PLACEHOLDERS`): the input through the
`worker-kafka` link, the consumer group to commit progress to, where the sink kind's output goes.
It is killed, paused and restarted like our own workers, and its output is read back through the
sink kind's harness side, so the same checkers judge it.

Nothing inside reports to the history, so a watcher does it from outside, as for Kafka Connect: a
process is ready once it has started (or once a line of its output matches its `ready`
pattern), and each advance of the group's committed offsets is a commit. The pipeline has drained
when those offsets cover the input: a pipeline that commits offsets before its output is durable
is then judged on what it really wrote.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from confluent_kafka import Consumer, TopicPartition

from chaos.engines.base import Factory, Status
from chaos.env.kafka_clients import client_config
from chaos.env.processes import ManagedProcess
from chaos.errors import SpecError
from chaos.sides.base import RunContext, SinkSide, SourceSide
from drivers.sdk.events import Event
from drivers.sdk.history import History

POLL = 0.5
"""Seconds between the watcher's looks at the processes' output and the group's offsets."""

log = logging.getLogger("chaos.engines.command")


class CommandEngine:
    def __init__(self, context: RunContext, source: SourceSide, sink: SinkSide):
        self.context = context
        self.source = source
        self.sink = sink
        self.commands = context.experiment.pipeline.commands
        self.processes = [f"command-{i}" for i in range(len(self.commands))]
        self.ready_events = {name: Event.ENGINE_WORKER_READY for name in self.processes}
        self.logs: dict[str, Path] = {}
        """The current incarnation's output of each process, where its `ready` line is looked for."""
        self.watcher: CommandWatcher | None = None

    # --- the Engine protocol ---

    def prepare(self) -> dict[str, Any]:
        settings = self.source.settings()
        self.group, self.topic = str(settings["group_id"]), str(settings["topic"])
        values = {"kafka": settings["bootstrap"], "topic": self.topic, "group": self.group,
                  "partitions": settings["partitions"], "run_dir": self.context.run_dir.resolve(),
                  "python": sys.executable}
        sink = self.sink.settings()
        self.resolved = [self._resolve(i, command, {**values, "index": i}, sink)
                         for i, command in enumerate(self.commands)]
        return {"engine": "command", "group": self.group,
                "commands": {name: resolved for name, resolved in zip(self.processes, self.resolved)}}

    def factory(self, name: str) -> Factory:
        resolved = self.resolved[self.processes.index(name)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", **resolved["env"])

        def start(incarnation: int) -> ManagedProcess:
            self.logs[name] = self.context.run_dir / "logs" / f"{name}-{incarnation}.log"
            return ManagedProcess(name, resolved["argv"], self.logs[name], env=env)
        return start

    def on_ready(self, name: str, event: dict[str, Any]) -> None:
        """Nothing to wire: the processes find Kafka and the output by their arguments."""

    def start(self, pid: Callable[[str], int | None], stack: ExitStack) -> None:
        self.watcher = CommandWatcher(self, pid)
        self.watcher.start()
        stack.callback(self.watcher.stop)

    def status(self) -> Status | None:
        return self.watcher.status if self.watcher is not None else None

    def resolve_role(self, role: str) -> str:
        raise ValueError(f"the command engine has no role {role!r}")

    def _resolve(self, index: int, command: Any, values: dict[str, Any], sink: dict[str, Any]) -> dict[str, Any]:
        """The command with its placeholders filled in; a `{sink.KEY}` the sink kind lacks is the
        experiment's error, named by its field."""
        def fill(template: str, field: str) -> str:
            try:
                return template.format(**values, sink=SimpleNamespace(**sink))
            except AttributeError as e:  # a `{sink.KEY}` the sink kind lacks: placeholder names were checked at load
                raise SpecError(f"pipeline.commands[{index}].{field}", [
                    f"{template!r}: the {self.context.experiment.pipeline.sink} sink has no setting {e.name} "
                    f"(its settings: {', '.join(sink)})"]) from None
        return {"argv": [fill(arg, "argv") for arg in command.argv],
                "env": {key: fill(value, f"env.{key}") for key, value in command.env.items()},
                "ready": command.ready}


class CommandWatcher:
    """Writes each process's readiness and each advance of the group's offsets to the history."""

    def __init__(self, engine: CommandEngine, pid: Callable[[str], int | None]):
        self.engine = engine
        self.pid = pid
        self.status: Status | None = None
        self.histories = {name: History(engine.context.run_dir / "history.jsonl", source=name)
                          for name in engine.processes}
        self.patterns = {name: re.compile(r["ready"]) if r["ready"] else None
                         for name, r in zip(engine.processes, engine.resolved)}
        self.announced: dict[str, int] = {}
        """The pid of each process's incarnation whose readiness was written."""
        self.read: dict[Path, int] = {}
        """How far each output file has been searched for its `ready` line."""
        self.positions: dict[int, int] | None = None
        self.checkpoint = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="command-watcher", daemon=True)
        self._consumer = Consumer(client_config(engine.context.env.bootstrap_direct, **{
            "group.id": engine.group, "enable.auto.commit": False}))
        """Reads the group's committed offsets without ever joining it."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()
        for history in self.histories.values():
            history.close()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                self._announce_ready()
                self._observe_commits()
            except Exception as e:  # noqa: BLE001 - a pipeline under faults: look again next time
                log.info("command watcher: %s", e)

    def _announce_ready(self) -> None:
        for name in self.engine.processes:
            pid = self.pid(name)
            if pid is None or self.announced.get(name) == pid or not self._ready_line(name):
                continue
            self.announced[name] = pid
            self.histories[name].append(Event.ENGINE_WORKER_READY, pid=pid)

    def _ready_line(self, name: str) -> bool:
        """The current incarnation has printed its `ready` line (or has none to print)."""
        pattern, path = self.patterns[name], self.engine.logs.get(name)
        if pattern is None:
            return True
        if path is None or not path.exists():
            return False
        with path.open("rb") as output:
            output.seek(self.read.get(path, 0))
            text = output.read()
        complete = text.rfind(b"\n") + 1  # a line still being written is searched once it ends
        self.read[path] = self.read.get(path, 0) + complete
        return any(pattern.search(line) for line in text[:complete].decode(errors="replace").splitlines())

    def _observe_commits(self) -> None:
        """Each advance of the group's committed offsets is a commit: the pipeline says it is done
        with everything before them."""
        partitions = [TopicPartition(self.engine.topic, p)
                      for p in range(self.engine.context.experiment.workload.partitions)]
        committed = self._consumer.committed(partitions, timeout=5)
        positions = {tp.partition: max(tp.offset, 0) for tp in committed}
        if positions == self.positions:
            return
        self.positions = positions
        if any(positions.values()):
            self.checkpoint += 1
            history = self.engine.context.history
            history.append(Event.CHECKPOINT_PERSISTED, checkpoint_id=self.checkpoint, positions={"0": positions},
                           observed=True)
            history.append(Event.CHECKPOINT_COMMITTED, checkpoint_id=self.checkpoint, observed=True)
            self.status = {"checkpoint_id": self.checkpoint, "positions": {"0": positions}}
