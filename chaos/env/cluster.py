"""A Kafka cluster of N nodes in KRaft combined mode, with a Toxiproxy link for every directed pair.

One proxy in front of a broker cannot cut A->B while leaving C->B alone: Kafka advertises one
address per listener to the whole cluster. So the replication and controller listeners are
advertised by host name (`kafka-1:PORT`), and each node's JVM resolves names through a hosts file of
its own (`-Djdk.net.hosts.file`): in node 0's file `kafka-1` is 127.77.1.2, an address only the
pair 0->1 uses, where that pair's proxies listen on node 1's ports and lead to node 1 on 127.0.0.1.
A node's own name is 127.0.0.1. The links are named for what they carry:

- `kafka-0->kafka-1`: node 0's connections to node 1's replication listener (0 fetching from 1,
  when 1 leads a partition 0 follows);
- `kafka-0->controller-1`: node 0's connections to node 1's controller listener (quorum votes and
  fetches, broker heartbeats, when 1 is the active controller).

Every node also has a direct listener on 127.0.0.1 for the harness, never faulted. Topics default
to replication factor N with `min.insync.replicas` 2, the internal ones included.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from chaos.env import install, kafka
from chaos.env.install import Tools
from chaos.env.kafka_clients import client_config
from chaos.env.ports import PortLeases
from chaos.env.processes import ManagedProcess, tail
from chaos.env.state import NodeState
from chaos.env.toxiproxy_server import start_toxiproxy
from chaos.errors import EnvironmentFailure
from faults.targets import pair_link
from faults.toxiproxy import Toxiproxy

NODE_HEAP = "-Xmx512m"
MIN_INSYNC = 2
REPLICA_LAG_MS = 4000
"""A follower that has not caught up for this long leaves the ISR: seconds, not the default 30."""
START_TIMEOUT = 120.0
STOP_GRACE = 5.0


@dataclass(frozen=True)
class NodePorts:
    direct: int
    replication: int
    controller: int
    links: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Client link -> (this node's listener for it, the port of its proxy for this node)."""


def node_ports(node: NodeState) -> NodePorts:
    return NodePorts(node.direct, node.replication, node.controller,
                     {link: (ports.broker, ports.proxy) for link, ports in node.links.items()})


def node_name(index: int) -> str:
    return f"kafka-{index}"


def client_proxy(link: str, index: int) -> str:
    """The proxy of client link `link` in front of node `index`: node 0's has the link's own name, so
    that one broker and a cluster name their first proxy alike."""
    return link if index == 0 else f"{link}@{node_name(index)}"


def pair_address(source: int, target: int) -> str:
    """The loopback address at which `source` reaches `target`: this pair's own."""
    return f"127.77.{source + 1}.{target + 1}"


def hosts_file(index: int, count: int) -> str:
    """Node `index`'s view of the cluster's names: itself directly, each peer through the pair's proxies."""
    lines = ["127.0.0.1 localhost", f"127.0.0.1 {socket.gethostname()}", f"127.0.0.1 {node_name(index)}"]
    lines += [f"{pair_address(index, peer)} {node_name(peer)}" for peer in range(count) if peer != index]
    return "\n".join(lines) + "\n"


def node_properties(index: int, ports: list[NodePorts], data_dir: Path) -> str:
    own = ports[index]
    replicas = str(len(ports))
    clients = {kafka.listener_name(link): ports for link, ports in own.links.items()}
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(index),
        "controller.quorum.voters": ",".join(f"{i}@{node_name(i)}:{p.controller}" for i, p in enumerate(ports)),
        "listeners": ",".join([f"DIRECT://127.0.0.1:{own.direct}", f"REPLICATION://127.0.0.1:{own.replication}",
                               f"CONTROLLER://127.0.0.1:{own.controller}",
                               *(f"{name}://127.0.0.1:{broker}" for name, (broker, _) in clients.items())]),
        "advertised.listeners": ",".join([f"DIRECT://127.0.0.1:{own.direct}",
                                          f"REPLICATION://{node_name(index)}:{own.replication}",
                                          *(f"{name}://127.0.0.1:{proxy}" for name, (_, proxy) in clients.items())]),
        "listener.security.protocol.map": ",".join(f"{name}:PLAINTEXT" for name in (
            "DIRECT", "REPLICATION", "CONTROLLER", *clients)),
        "inter.broker.listener.name": "REPLICATION",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "default.replication.factor": replicas,
        "min.insync.replicas": str(MIN_INSYNC),
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": str(MIN_INSYNC),
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": str(MIN_INSYNC),
        "replica.lag.time.max.ms": str(REPLICA_LAG_MS),
        "unclean.leader.election.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        # A hard-killed node is fenced by the active controller once its session lapses; it is
        # restarted only after that (see `KafkaCluster.wait_fenced`), so that its registration does not race it.
        "broker.session.timeout.ms": "5000",
        "broker.heartbeat.interval.ms": "500",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


class KafkaCluster:
    """N combined nodes, each in `workdir/kafka-<i>` with its logs in `logs/kafka-<i>`."""

    def __init__(self, tools: Tools, toxiproxy: Toxiproxy, ports: list[NodePorts], workdir: Path, logs: Path):
        self.tools = tools
        self.toxiproxy = toxiproxy
        self.ports = ports
        self.workdir = workdir
        self.logs = logs
        self.nodes: dict[int, ManagedProcess] = {}
        """The running process of each node started here."""

    @property
    def count(self) -> int:
        return len(self.ports)

    @property
    def bootstrap_direct(self) -> str:
        return ",".join(f"127.0.0.1:{p.direct}" for p in self.ports)

    def client_proxies(self) -> list[str]:
        return [client_proxy(link, index) for index, ports in enumerate(self.ports) for link in ports.links]

    def pair_links(self) -> list[str]:
        return [name for name, _, _ in self._pair_proxies()]

    def _pair_proxies(self) -> Iterator[tuple[str, str, str]]:
        """(name, listen, upstream) of each pair's proxies: on the pair's own address, on the
        target's replication and controller ports."""
        for source in range(self.count):
            for target in (t for t in range(self.count) if t != source):
                ports = self.ports[target]
                for controller, port in ((False, ports.replication), (True, ports.controller)):
                    yield pair_link(source, target, controller), f"{pair_address(source, target)}:{port}", \
                        f"127.0.0.1:{port}"

    def directory(self, index: int) -> Path:
        return self.workdir / node_name(index)

    def data_dirs(self) -> list[Path]:
        return [self.directory(index) / "data" for index in range(self.count)]

    def start(self, detached: bool) -> list[ManagedProcess]:
        """Wire the pair links, format every node for one quorum, start them all, and return once
        every broker is registered; a node that fails to start stops the others."""
        self.wire()
        cluster_id = kafka.new_cluster_id(self.tools)
        for index in range(self.count):
            directory = self.directory(index)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "server.properties").write_text(node_properties(index, self.ports, directory / "data"))
            (directory / "hosts").write_text(hosts_file(index, self.count))
            (directory / "log4j2.properties").write_text(kafka.LOG4J2)
            kafka.format_storage(self.tools, directory / "server.properties", cluster_id)
        try:
            for index in range(self.count):
                self.nodes[index] = self.spawn(index, detached)
            self.wait_for_brokers(list(self.nodes.values()))
        except BaseException:
            self.stop()
            raise
        return list(self.nodes.values())

    def stop(self) -> None:
        """Stop every node at once: one by one, the last ones would wait out their grace period for
        a quorum that has already gone."""
        nodes = [self.nodes.pop(index) for index in sorted(self.nodes)]
        with ThreadPoolExecutor(max(len(nodes), 1)) as pool:
            list(pool.map(lambda node: node.stop(STOP_GRACE), nodes))

    def spawn(self, index: int, detached: bool) -> ManagedProcess:
        """Start node `index` on its data: its first start and every restart."""
        logs = self.logs / node_name(index)
        logs.mkdir(parents=True, exist_ok=True)
        argv = kafka.broker_argv(self.tools, self.directory(index), logs, heap=NODE_HEAP,
                                 jvm=[f"-Djdk.net.hosts.file={self.directory(index) / 'hosts'}"])
        return ManagedProcess(node_name(index), argv, logs / "stdout.log", detached=detached)

    def wait_for_brokers(self, nodes: list[ManagedProcess], timeout: float = START_TIMEOUT) -> None:
        admin = AdminClient(client_config(self.bootstrap_direct, **{"socket.timeout.ms": 3000}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in nodes:
                if node.poll() is not None:
                    raise EnvironmentFailure(f"{node.name} exited with code {node.poll()} during start-up",
                                             node.log_tail() + "\n" + tail(self.logs / node.name / "server.log"))
            try:
                if len(admin.list_topics(timeout=2).brokers) == self.count:
                    return
            except Exception:  # noqa: BLE001 - any failure here means "not ready yet"
                pass
            time.sleep(0.5)
        raise EnvironmentFailure(f"the {self.count} Kafka nodes did not all register within {timeout:.0f}s",
                                 tail(self.logs / node_name(0) / "server.log"))

    def brokers(self) -> set[int]:
        """The node ids the cluster's metadata lists as live brokers (a fenced broker is not listed)."""
        admin = AdminClient(client_config(self.bootstrap_direct, **{"socket.timeout.ms": 3000}))
        return set(admin.list_topics(timeout=5).brokers)

    def wait_fenced(self, index: int, timeout: float = START_TIMEOUT) -> None:
        """Until the active controller has fenced a stopped node (it is gone from the metadata's
        brokers): a node hard-killed within its session would otherwise register while its old
        session still holds."""
        deadline = time.monotonic() + timeout
        while index in self._brokers_or_none() and time.monotonic() < deadline:
            time.sleep(0.5)

    def wait_registered(self, index: int, node: ManagedProcess, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while index not in self._brokers_or_none():
            if node.poll() is not None or time.monotonic() > deadline:
                raise EnvironmentFailure(f"{node.name} did not register again within {timeout:.0f}s",
                                         tail(self.logs / node.name / "server.log"))
            time.sleep(0.5)

    def _brokers_or_none(self) -> set[int]:
        try:
            return self.brokers()
        except Exception:  # noqa: BLE001 - mid-failover the metadata may not answer at once
            return set()

    def wire(self) -> None:
        """Each pair's proxies, and each client link's proxy for a node where that node advertises it."""
        for index, ports in enumerate(self.ports):
            for link, (broker, proxy) in ports.links.items():
                self.toxiproxy.ensure(client_proxy(link, index), f"127.0.0.1:{proxy}", f"127.0.0.1:{broker}")
        for name, listen, upstream in self._pair_proxies():
            self.toxiproxy.ensure(name, listen, upstream)


def create_internal_topics(bootstrap: str) -> None:
    """The consumer offsets and the transaction state log, created now: with a replica on every
    node, neither could be created once a fault has taken a node down."""
    consumer = Consumer(client_config(bootstrap, **{"group.id": "chaos-environment"}))
    producer = Producer(client_config(bootstrap, **{"transactional.id": "chaos-environment"}))
    # Just created, a coordinator may still be moving (NOT_COORDINATOR): asked again for a while.
    retrying = Retrying(stop=stop_after_delay(60), wait=wait_fixed(0.5), reraise=True,
                        retry=retry_if_exception(_coordinator_moving))
    try:
        retrying(consumer.committed, [TopicPartition("chaos-environment", 0)], timeout=30)
        retrying(producer.init_transactions, 30)
    except KafkaException as e:
        raise EnvironmentFailure(f"the cluster's internal topics could not be created: {e}") from e
    finally:
        consumer.close()


def _coordinator_moving(error: BaseException) -> bool:
    """A retriable error, or a coordinator not yet settled (not always flagged retriable)."""
    if not isinstance(error, KafkaException):
        return False
    code = error.args[0]
    return code.retriable() or code.code() in (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                                                KafkaError.COORDINATOR_LOAD_IN_PROGRESS)


@contextmanager
def running_cluster(workdir: Path, count: int = 3) -> Iterator[KafkaCluster]:
    """A cluster of `count` nodes and a Toxiproxy server of its own, on leased ports, owned by this
    process: stopped, and its ports released, on the way out."""
    tools = install.install()
    leases = PortLeases()
    owner = str(workdir)
    ports = iter(leases.reserve(owner, 1 + 3 * count))
    logs = workdir / "logs"
    api = next(ports)
    proxy_server = start_toxiproxy(tools, api, logs, detached=False)
    cluster = KafkaCluster(tools, Toxiproxy(api), [NodePorts(next(ports), next(ports), next(ports))
                                                   for _ in range(count)], workdir, logs)
    try:
        cluster.start(detached=False)
        yield cluster
    finally:
        cluster.stop()
        proxy_server.stop()
        leases.release(owner)
