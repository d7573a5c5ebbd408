"""A single-node Kafka broker in KRaft combined mode, with one listener per proxied link.

Clients must never bypass Toxiproxy, so each named Kafka link gets a listener of its own whose
*advertised* address is that link's proxy: metadata responses then send clients back through the
proxy. The controller and inter-broker traffic, and the harness's own reads, use direct listeners.

The broker can also be killed or terminated and started again on the same log directories,
listeners and `server.properties` (`stop_broker`, `restart_broker`): the service faults do that.
"""

from __future__ import annotations

import logging
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from confluent_kafka.admin import AdminClient

from chaos.env.install import Tools
from chaos.env.kafka_clients import client_config
from chaos.env.launch import Service, ServiceRef
from chaos.env.processes import tail
from chaos.errors import EnvironmentFailure

HEAP = "-Xmx768m"
RESTART_TIMEOUT = 120.0
"""How long a restarted broker may take to answer metadata again, registration retries included."""
TERMINATE_TIMEOUT = 60.0
"""How long a clean shutdown (SIGTERM) may take before the broker is SIGKILLed."""

Spawn = Callable[[Callable[[], Service]], Service]
"""Runs a process factory on the thread that must own the child (see `Environment`)."""

log = logging.getLogger("chaos.env")


def _spawn_here(factory: Callable[[], Service]) -> Service:
    return factory()


@dataclass(frozen=True)
class KafkaPorts:
    direct: int
    controller: int
    links: dict[str, tuple[int, int]]  # link name -> (broker listener port, proxy listen port)


def listener_name(link: str) -> str:
    return "LINK_" + "".join(c if c.isalnum() else "_" for c in link.upper())


def server_properties(ports: KafkaPorts, data_dir: Path) -> str:
    listeners = [f"DIRECT://127.0.0.1:{ports.direct}", f"CONTROLLER://127.0.0.1:{ports.controller}"]
    advertised = [f"DIRECT://127.0.0.1:{ports.direct}"]
    protocols = ["DIRECT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    for link, (broker_port, proxy_port) in ports.links.items():
        name = listener_name(link)
        listeners.append(f"{name}://127.0.0.1:{broker_port}")
        advertised.append(f"{name}://127.0.0.1:{proxy_port}")
        protocols.append(f"{name}:PLAINTEXT")
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{ports.controller}",
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "listener.security.protocol.map": ",".join(protocols),
        "inter.broker.listener.name": "DIRECT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        # A broker restarted after a SIGKILL registers again, and the controller (the same process,
        # which replays the old registration) refuses it with DUPLICATE_BROKER_REGISTRATION until the
        # old session expires: 9s by default. 5s still outlasts a 4s pause of the whole process.
        "broker.session.timeout.ms": "5000",
        "broker.heartbeat.interval.ms": "500",
    }
    return "".join(f"{k}={v}\n" for k, v in settings.items())


LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def start_broker(tools: Tools, ports: KafkaPorts, workdir: Path, logs: Path, detached: bool) -> Service:
    """Format fresh storage and start the broker; returns once it answers a metadata request."""
    data_dir = workdir / "kafka-data"
    shutil.rmtree(data_dir, ignore_errors=True)  # left by a start that failed (a port taken, say)
    config = workdir / "server.properties"
    config.write_text(server_properties(ports, data_dir))
    (workdir / "log4j2.properties").write_text(LOG4J2)
    format_storage(tools, config, new_cluster_id(tools), "--standalone")
    broker = tools.launcher.spawn("kafka", broker_argv(tools, workdir, logs), logs / "kafka.stdout.log", detached,
                                  tools.launcher.service_env(workdir, "kafka"))
    try:
        wait_for_metadata(f"127.0.0.1:{ports.direct}", broker)
    except EnvironmentFailure as e:  # the broker logs why it stopped (a BindException, say) to server.log
        broker.stop()
        raise EnvironmentFailure(str(e), "\n".join(filter(None, [e.log_tail, tail(logs / "server.log")]))) from e
    return broker


def broker_argv(tools: Tools, workdir: Path, logs: Path, heap: str = HEAP, jvm: Sequence[str] = ()) -> list[str]:
    """The broker's command line: the same for its first start and every restart."""
    return [
        tools.java, heap, "-Xms256m", "-XX:+UseG1GC", "-Djava.awt.headless=true", *jvm,
        f"-Dkafka.logs.dir={logs}", f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
        "-cp", tools.kafka_classpath, "kafka.Kafka", str(workdir / "server.properties"),
    ]


def stop_broker(ref: ServiceRef, graceful: bool, timeout: float = TERMINATE_TIMEOUT) -> bool:
    """SIGKILL the broker, or SIGTERM it (a clean, controlled shutdown) and wait up to `timeout`.

    Returns once it has exited (a zombie has: its parent may not be this process); True if the
    shutdown was clean. A broker still running after `timeout` is SIGKILLed.
    """
    if not ref.running():
        raise EnvironmentFailure(f"Kafka (pid {ref.pid}) is not running")
    clean = False
    if graceful:
        ref.signal(signal.SIGTERM)
        ref.signal(signal.SIGCONT)  # a paused broker cannot act on SIGTERM
        clean = ref.wait_gone(timeout)
        if not clean:
            log.warning("Kafka (pid %d) did not shut down within %.0fs; killing it", ref.pid, timeout)
    if not clean:
        ref.signal(signal.SIGKILL)
        if not ref.wait_gone(10):
            raise EnvironmentFailure(f"Kafka (pid {ref.pid}) survived SIGKILL for 10s")
    return clean


def restart_broker(tools: Tools, workdir: Path, logs: Path, direct_port: int, detached: bool,
                   spawn: Spawn = _spawn_here, on_spawn: Callable[[Service], None] | None = None,
                   timeout: float = RESTART_TIMEOUT) -> Service:
    """Start the broker again on its existing log directories, listeners and configuration.

    No formatting: topics, committed offsets and transaction state are what the log directories
    hold. A broker that exits during start-up (say, its registration was refused for too long) is
    started again, until it answers a metadata request on its direct listener or `timeout` ends.
    `on_spawn` sees each process as soon as it exists, so that it can be recorded before the wait.
    """
    if not (workdir / "server.properties").is_file():
        raise EnvironmentFailure(f"cannot restart Kafka: {workdir / 'server.properties'} is missing")
    argv = broker_argv(tools, workdir, logs)
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        broker = spawn(lambda: tools.launcher.spawn("kafka", argv, logs / "kafka.stdout.log", detached,
                                                    tools.launcher.service_env(workdir, "kafka")))
        if on_spawn is not None:
            on_spawn(broker)
        try:
            wait_for_metadata(f"127.0.0.1:{direct_port}", broker, timeout=max(1.0, deadline - time.monotonic()))
            return broker
        except EnvironmentFailure:
            if broker.poll() is None:  # up, but no answer within the bound
                broker.stop()
                raise
            code = broker.release()  # exited and reaped: never signal its pid again
            if time.monotonic() + 2 > deadline:
                raise
            log.warning("restarted Kafka exited during start-up (attempt %d, code %s); starting it again",
                        attempt, code)
            time.sleep(1)


def new_cluster_id(tools: Tools) -> str:
    argv = [tools.java, "-cp", tools.kafka_classpath, "kafka.tools.StorageTool", "random-uuid"]
    return tools.launcher.run("kafka", argv, timeout=120).strip()


def format_storage(tools: Tools, config: Path, cluster_id: str, *options: str) -> None:
    """Format a node's log directories for the cluster `cluster_id` (the quorum's form in `options`)."""
    tools.launcher.run("kafka", [tools.java, "-cp", tools.kafka_classpath, "kafka.tools.StorageTool", "format",
                                 *options, "-t", cluster_id, "-c", str(config)], timeout=120)


def wait_for_metadata(bootstrap: str, broker: Service | None = None, timeout: float = 90.0) -> None:
    """Block until the broker answers a metadata request, or fail with its log tail."""
    admin = AdminClient(client_config(bootstrap, **{"socket.timeout.ms": 3000}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker is not None and broker.poll() is not None:
            raise EnvironmentFailure(f"Kafka exited with code {broker.poll()} during start-up", broker.log_tail())
        try:
            if admin.list_topics(timeout=2).brokers:
                return
        except Exception:  # noqa: BLE001 - any failure here means "not ready yet"
            pass
        time.sleep(0.5)
    raise EnvironmentFailure(f"Kafka did not answer a metadata request within {timeout:.0f}s",
                             broker.log_tail() if broker else "")
