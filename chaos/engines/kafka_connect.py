"""The `kafka-connect` engine: real Kafka Connect workers in distributed mode, run as a black box.

Each worker is one JVM (`connect-0`, `connect-1`, ...) in one group, with the run's own config,
offset and status topics and a REST listener on a leased 127.0.0.1 port. The workers reach Kafka
through the `worker-kafka` link and the catalog through the `worker-catalog` link, so faults
can cut them off; the harness talks to them over REST directly.

Nothing inside a black box reports to the history, so a watcher thread does it from outside
(`connect_watcher.py`): readiness, the connector's creation, failed tasks, and each new snapshot
as a commit. The connector is deleted at the end, before the workers stop.

Settled (the `status` may cover the input) means the connector's consumer group has committed
offsets at the input's end and the commit coordinator has since consumed its control topic past
where it stood then, so whatever was handed over has been through a commit.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from confluent_kafka.admin import NewTopic
from tenacity import Retrying, stop_after_delay, wait_fixed

from chaos.engines.base import Factory, Status
from chaos.engines.connect_rest import ConnectRest, ConnectRestError
from chaos.engines.connect_watcher import POLL, ConnectWatcher
from chaos.env.connect_install import install_connect
from chaos.env.processes import ManagedProcess
from chaos.sides.base import RunContext, SinkSide, SourceSide
from chaos.sides.iceberg import CATALOG_NAME, identifier
from drivers.engines import ENGINE_CONNECTORS
from drivers.sdk.events import Event

HEAP = ["-Xmx384m", "-Xms128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
"""Two workers share the machine with the broker and PostgreSQL; C1 alone starts them sooner."""
DELETE_TIMEOUT = 10.0
COMMIT_TIMEOUT_MS = 10_000
ROLE_TIMEOUT = 15.0
"""Seconds a role may take to resolve: a rebalance settles well within it."""

log = logging.getLogger("chaos.engines.connect")

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:connect.log.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
logger.connect.name = org.apache.kafka.connect
logger.connect.level = INFO
logger.iceberg.name = org.apache.iceberg
logger.iceberg.level = INFO
"""


class KafkaConnectEngine:
    def __init__(self, context: RunContext, source: SourceSide, sink: SinkSide):
        self.context = context
        self.source = source
        self.sink = sink
        pipeline = context.experiment.pipeline
        self.connector = ENGINE_CONNECTORS[pipeline.connector]
        self.processes = [f"connect-{i}" for i in range(pipeline.workers)]
        self.ready_events = {name: Event.ENGINE_WORKER_READY for name in self.processes}
        self.name = f"chaos-{context.run_id}"
        """The connector's name; its consumer group is `connect-<name>`."""
        self.control_topic = f"{self.name}-control"
        self.directory = context.run_dir / "connect"
        self.tools = install_connect()
        self.ports = {name: context.env.reserve_port() for name in self.processes}
        self.rest = {name: ConnectRest(port) for name, port in self.ports.items()}
        self.watcher: ConnectWatcher | None = None

    # --- the Engine protocol ---

    def prepare(self) -> dict[str, Any]:
        env = self.context.env
        admin = env.admin()
        topic = NewTopic(self.control_topic, num_partitions=1, replication_factor=1)
        admin.create_topics([topic], operation_timeout=30)[self.control_topic].result(timeout=60)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "log4j2.properties").write_text(_LOG4J2)
        for name in self.processes:
            (self.directory / f"{name}.properties").write_text(self._worker_properties(name))
        self.sink_settings = self.sink.settings()  # creates the `worker-catalog` link
        self.config = self._connector_config()
        return {"engine": "kafka-connect", "connector": {"name": self.name, "kind": self.connector.name,
                                                         "version": self.connector.version, "config": self.config},
                "workers": {name: {"rest_port": port} for name, port in self.ports.items()}}

    def factory(self, name: str) -> Factory:
        logs = self.context.run_dir / "logs"

        def start(incarnation: int) -> ManagedProcess:
            argv = [self.tools.java, *HEAP, "-Djava.awt.headless=true",
                    f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
                    f"-Dconnect.log.file={logs / f'{name}-{incarnation}.connect.log'}",
                    "-cp", self.tools.classpath, "org.apache.kafka.connect.cli.ConnectDistributed",
                    str(self.directory / f"{name}.properties")]
            return ManagedProcess(name, argv, logs / f"{name}-{incarnation}.log")
        return start

    def on_ready(self, name: str, event: dict[str, Any]) -> None:
        """Nothing to wire: the workers find each other through Kafka."""

    def start(self, pid: Callable[[str], int | None], stack: ExitStack) -> None:
        self.watcher = ConnectWatcher(self, pid)
        self.watcher.start()
        stack.callback(self._finish)

    def status(self) -> Status | None:
        return self.watcher.status if self.watcher is not None else None

    def resolve_role(self, role: str) -> str:
        """`connect-coordinator`: the sink elects as its commit coordinator the task that holds
        partition 0 of the topic. Which task that is comes from the consumer group (Connect names a
        task's consumer `connector-consumer-<connector>-<task>`), and which worker runs the task
        from the REST API's status. Mid-rebalance neither may know yet: asked again for a while."""
        if role != "connect-coordinator":
            raise ValueError(f"the kafka-connect engine has no role {role!r}")
        retrying = Retrying(stop=stop_after_delay(ROLE_TIMEOUT), wait=wait_fixed(POLL), reraise=True)
        return retrying(self._coordinator_worker)

    def _coordinator_worker(self) -> str:
        group = f"connect-{self.name}"
        admin = self.context.env.admin()  # held: a client collected mid-call never resolves its futures
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=5)
        except Exception as e:  # noqa: BLE001 - a timeout says nothing by itself
            raise RuntimeError(f"could not describe the consumer group {group}: {e!r}") from e
        topic = str(self.source.settings()["topic"])
        task = next((int(m.client_id.rsplit("-", 1)[1]) for m in description.members
                     if any(tp.topic == topic and tp.partition == 0 for tp in m.assignment.topic_partitions)), None)
        if task is None:
            raise RuntimeError(f"no task of {self.name} holds partition 0 of {topic} (the group is rebalancing)")
        for rest in self.rest.values():
            try:
                status = rest.status(self.name) or {}
            except ConnectRestError:
                continue
            worker = next((t.get("worker_id", "") for t in status.get("tasks", []) if t.get("id") == task), "")
            port = int(worker.rsplit(":", 1)[1]) if ":" in worker else None
            name = next((n for n, p in self.ports.items() if p == port), None)
            if name is not None:
                return name
        raise RuntimeError(f"no worker answered which one runs task {task} of {self.name}")

    # --- configuration ---

    def _worker_properties(self, name: str) -> str:
        port = self.ports[name]
        settings = {
            "bootstrap.servers": self.context.env.bootstrap("worker-kafka"),
            "group.id": f"{self.name}-workers",
            "config.storage.topic": f"{self.name}-configs",
            "offset.storage.topic": f"{self.name}-offsets",
            "status.storage.topic": f"{self.name}-status",
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "offset.storage.partitions": "1",
            "status.storage.partitions": "1",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
            "listeners": f"http://127.0.0.1:{port}",
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": str(port),
            "plugin.path": str(self.tools.plugin_path),
            "plugin.discovery": "service_load",
            "consumer.isolation.level": "read_committed",
            # The tasks' consumer group: a killed worker's partitions move after 6 s, not 45.
            "consumer.session.timeout.ms": "6000",
            "consumer.heartbeat.interval.ms": "1000",
            # The workers' group: a lost worker's tasks move within seconds, not the default five minutes.
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1000",
            "scheduled.rebalance.max.delay.ms": "3000",
            "task.shutdown.graceful.timeout.ms": "3000",
            "offset.flush.interval.ms": "1000",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _connector_config(self) -> dict[str, str]:
        """The Iceberg sink on the sink side's table: the testbed's catalog name, namespace and
        warehouse, the catalog database reached through the `worker-catalog` link."""
        settings = self.sink_settings
        uri = str(settings["catalog_uri"])  # postgresql://chaos@127.0.0.1:PORT/chaos
        address = uri.split("@", 1)[1]
        pipeline = self.context.experiment.pipeline
        return {
            "connector.class": self.connector.connector_class,
            "tasks.max": str(pipeline.workers),
            "topics": str(self.source.settings()["topic"]),
            "iceberg.tables": identifier(str(settings["table_name"])),
            "iceberg.catalog": CATALOG_NAME,
            "iceberg.catalog.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
            "iceberg.catalog.uri": f"jdbc:postgresql://{address}",
            "iceberg.catalog.jdbc.user": "chaos",
            "iceberg.catalog.warehouse": Path(str(settings["warehouse"])).resolve().as_uri(),
            "iceberg.catalog.io-impl": "org.apache.iceberg.hadoop.HadoopFileIO",
            "iceberg.tables.auto-create-enabled": "true",
            "iceberg.tables.evolve-schema-enabled": "true",
            "iceberg.control.topic": self.control_topic,
            "iceberg.control.group-id-prefix": f"{self.name}-cg-control",
            "iceberg.control.commit.interval-ms": str(int(pipeline.checkpoint_interval * 1000)),
            # A commit cycle waits this long for every task's answer before committing what it has. The
            # first cycle can start before a task's control consumer has joined and then waits it out:
            # at the default 30 s, the first commit lands too late for faults timed by commits.
            "iceberg.control.commit.timeout-ms": str(COMMIT_TIMEOUT_MS),
        }

    def _finish(self) -> None:
        """Stop watching, then delete the connector while its workers still run (they stop next)."""
        if self.watcher is not None:
            self.watcher.stop()
        deadline = time.monotonic() + DELETE_TIMEOUT
        while time.monotonic() < deadline:
            for rest in self.rest.values():
                try:
                    rest.delete(self.name)
                    return
                except ConnectRestError as e:
                    log.info("deleting connector %s: %s", self.name, e)
            time.sleep(POLL)
