"""A Kafka cluster of N KRaft nodes, with a Toxiproxy link for every directed pair of processes.

One proxy in front of a broker cannot cut A->B while leaving C->B alone: Kafka advertises one
address per listener to the whole cluster. So the replication and controller listeners are
advertised by host name (`kafka-1:PORT`), and each process's JVM resolves names through a hosts
file of its own (`-Djdk.net.hosts.file`): in node 0's file `kafka-1` is 127.77.1.2, an address only
the pair 0->1 uses, where that pair's proxies listen on node 1's ports and lead to node 1 on
127.0.0.1. A process's own name is 127.0.0.1. The links are named for what they carry:

- `kafka-0->kafka-1`: node 0's connections to node 1's replication listener (0 fetching from 1,
  when 1 leads a partition 0 follows);
- `kafka-0->controller-1`: node 0's connections to controller 1's listener (broker heartbeats and
  metadata fetches; combined, also quorum votes and fetches, controller 1 being inside node 1);
- `controller-0->controller-1`: with the controllers apart (`separate`), the quorum's own traffic.

The configuration itself is rendered in `chaos.env.cluster_config`. Every broker also has a direct
listener on 127.0.0.1 for the harness, never faulted. Topics default to replication factor N with
`min.insync.replicas` 2, the internal ones included.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from chaos.env import install, kafka
from chaos.env.clock_shim import service_clock_env
from chaos.env.cluster_config import (
    CONTROLLER_ID_BASE,
    NodePorts,
    client_proxy,
    controller_name,
    controller_properties,
    hosts_file,
    node_name,
    node_properties,
    pair_address,
    process_index,
)
from chaos.env.install import Tools
from chaos.env.kafka_clients import client_config
from chaos.env.ports import PortLeases
from chaos.env.processes import ManagedProcess, tail
from chaos.env.toxiproxy_server import start_toxiproxy
from chaos.errors import EnvironmentFailure
from faults.targets import CLUSTER_NODES, pair_links
from faults.toxiproxy import Toxiproxy

NODE_HEAP = "-Xmx512m"
CONTROLLER_HEAP = "-Xmx256m"
START_TIMEOUT = 120.0
STOP_GRACE = 5.0


class KafkaCluster:
    """N brokers (combined nodes, or brokers beside N controller processes when `separate`), each
    process in `workdir/<name>` with its logs in `logs/<name>`."""

    def __init__(self, tools: Tools, toxiproxy: Toxiproxy, ports: list[NodePorts], workdir: Path, logs: Path,
                 separate: bool = False):
        self.tools = tools
        self.toxiproxy = toxiproxy
        self.ports = ports
        self.workdir = workdir
        self.logs = logs
        self.separate = separate
        self.processes: dict[str, ManagedProcess] = {}
        """The running process of each node or controller started here, by name."""

    @property
    def count(self) -> int:
        return len(self.ports)

    @property
    def names(self) -> list[str]:
        """Every process of the cluster: the brokers, then the controllers when they run apart."""
        return [node_name(i) for i in range(self.count)] + (
            [controller_name(i) for i in range(self.count)] if self.separate else [])

    @property
    def bootstrap_direct(self) -> str:
        return ",".join(f"127.0.0.1:{p.direct}" for p in self.ports)

    def client_proxies(self) -> list[str]:
        return [client_proxy(link, index) for index, ports in enumerate(self.ports) for link in ports.links]

    def pair_links(self) -> list[str]:
        return [name for name, _, _ in self._pair_proxies()]

    def _pair_proxies(self) -> Iterator[tuple[str, str, str]]:
        """(name, listen, upstream) of each pair's proxy: on the pair's own address, on the target's
        replication or controller port."""
        for link in pair_links(self.separate):
            target = self.ports[process_index(link.target) % CLUSTER_NODES]
            port = target.controller if link.quorum else target.replication
            address = pair_address(process_index(link.source), process_index(link.target))
            yield link.name, f"{address}:{port}", f"127.0.0.1:{port}"

    def directory(self, name: str) -> Path:
        return self.workdir / name

    def data_dirs(self) -> list[Path]:
        """Where the quorum's state is kept: in the controllers' data directories."""
        holders = [controller_name(i) for i in range(self.count)] if self.separate else self.names
        return [self.directory(name) / "data" for name in holders]

    def controller_process(self, node_id: int) -> str:
        """The process of the controller with node id `node_id`."""
        return controller_name(node_id - CONTROLLER_ID_BASE) if self.separate else node_name(node_id)

    def _configure(self, name: str, cluster_id: str) -> None:
        directory = self.directory(name)
        directory.mkdir(parents=True, exist_ok=True)
        index = process_index(name) % CLUSTER_NODES
        if name.startswith("controller-"):
            properties = controller_properties(index, self.ports, directory / "data")
            peers = [controller_name(i) for i in range(self.count)]
        else:
            properties = node_properties(index, self.ports, directory / "data", self.separate)
            peers = self.names
        (directory / "server.properties").write_text(properties)
        (directory / "hosts").write_text(hosts_file(name, peers))
        (directory / "log4j2.properties").write_text(kafka.LOG4J2)
        kafka.format_storage(self.tools, directory / "server.properties", cluster_id)

    def start(self, detached: bool) -> list[ManagedProcess]:
        """Wire the pair links, format every process for one quorum (at once: each format is a JVM),
        start them all, and return once every broker is registered; a process that fails to start
        stops the others."""
        self.wire()
        cluster_id = kafka.new_cluster_id(self.tools)
        with ThreadPoolExecutor(len(self.names)) as pool:
            list(pool.map(lambda name: self._configure(name, cluster_id), self.names))
        try:
            for name in self.names:
                self.processes[name] = self.spawn(name, detached)
            self.wait_for_brokers(list(self.processes.values()))
        except BaseException:
            self.stop()
            raise
        return list(self.processes.values())

    def stop(self) -> None:
        """Stop every process at once: one by one, the last ones would wait out their grace period
        for a quorum that has already gone."""
        processes = [self.processes.pop(name) for name in list(self.processes)]
        with ThreadPoolExecutor(max(len(processes), 1)) as pool:
            list(pool.map(lambda process: process.stop(STOP_GRACE), processes))

    def spawn(self, name: str, detached: bool) -> ManagedProcess:
        """Start process `name` on its data: its first start and every restart."""
        logs = self.logs / name
        logs.mkdir(parents=True, exist_ok=True)
        heap = CONTROLLER_HEAP if name.startswith("controller-") else NODE_HEAP
        argv = kafka.broker_argv(self.tools, self.directory(name), logs, heap=heap,
                                 jvm=[f"-Djdk.net.hosts.file={self.directory(name) / 'hosts'}"])
        return ManagedProcess(name, argv, logs / "stdout.log", detached=detached,
                              env=service_clock_env(self.workdir, name))

    def wait_for_brokers(self, processes: list[ManagedProcess], timeout: float = START_TIMEOUT) -> None:
        admin = AdminClient(client_config(self.bootstrap_direct, **{"socket.timeout.ms": 3000}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in processes:
                if process.poll() is not None:
                    raise EnvironmentFailure(f"{process.name} exited with code {process.poll()} during start-up",
                                             process.log_tail() + "\n" + tail(self.logs / process.name / "server.log"))
            try:
                if len(admin.list_topics(timeout=2).brokers) == self.count:
                    return
            except Exception:  # noqa: BLE001 - any failure here means "not ready yet"
                pass
            time.sleep(0.5)
        raise EnvironmentFailure(f"the {self.count} Kafka brokers did not all register within {timeout:.0f}s",
                                 tail(self.logs / node_name(0) / "server.log"))

    def brokers(self) -> set[int]:
        """The node ids the cluster's metadata lists as live brokers (a fenced broker is not listed)."""
        admin = AdminClient(client_config(self.bootstrap_direct, **{"socket.timeout.ms": 3000}))
        return set(admin.list_topics(timeout=5).brokers)

    def restart(self, name: str, spawn: Callable[[Callable[[], ManagedProcess]], ManagedProcess],
                detached: bool, on_spawn: Callable[[ManagedProcess], None]) -> None:
        """Start a stopped process again on its data, once it may: a broker once the controller has
        fenced it, and returns once it is registered again; a controller once its port answers."""
        if name.startswith("controller-"):
            process = spawn(lambda: self.spawn(name, detached))
            on_spawn(process)
            wait_listening(self.ports[process_index(name) % CLUSTER_NODES].controller, process,
                           self.logs / name / "server.log")
            return
        index = process_index(name)
        self.wait_fenced(index)
        process = spawn(lambda: self.spawn(name, detached))
        on_spawn(process)
        self.wait_registered(index, process)

    def wait_fenced(self, index: int, timeout: float = START_TIMEOUT) -> None:
        """Until the active controller has fenced a stopped broker (it is gone from the metadata's
        brokers): a broker hard-killed within its session would otherwise register while its old
        session still holds."""
        deadline = time.monotonic() + timeout
        while index in self._brokers_or_none() and time.monotonic() < deadline:
            time.sleep(0.5)

    def wait_registered(self, index: int, process: ManagedProcess, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while index not in self._brokers_or_none():
            if process.poll() is not None or time.monotonic() > deadline:
                raise EnvironmentFailure(f"{process.name} did not register again within {timeout:.0f}s",
                                         tail(self.logs / process.name / "server.log"))
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


def wait_listening(port: int, process: ManagedProcess, log: Path, timeout: float = START_TIMEOUT) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (the process's own listener)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise EnvironmentFailure(f"{process.name} did not listen on port {port} within {timeout:.0f}s",
                                         tail(log)) from None
            time.sleep(0.5)


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
def running_cluster(workdir: Path, count: int = 3, separate: bool = False) -> Iterator[KafkaCluster]:
    """A cluster of `count` nodes (and as many controllers, `separate`) and a Toxiproxy server of its
    own, on leased ports, owned by this process: stopped, and its ports released, on the way out."""
    tools = install.install()
    leases = PortLeases()
    owner = str(workdir)
    ports = iter(leases.reserve(owner, 1 + 3 * count))
    logs = workdir / "logs"
    api = next(ports)
    proxy_server = start_toxiproxy(tools, api, logs, detached=False)
    cluster = KafkaCluster(tools, Toxiproxy(api), [NodePorts(next(ports), next(ports), next(ports))
                                                   for _ in range(count)], workdir, logs, separate)
    try:
        cluster.start(detached=False)
        yield cluster
    finally:
        cluster.stop()
        proxy_server.stop()
        leases.release(owner)
