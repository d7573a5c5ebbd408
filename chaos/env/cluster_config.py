"""A cluster's configuration, rendered: each process's `server.properties` and hosts file, and the
loopback address of each directed pair.

Pure text from ports, so that the wiring can be read (and unit-tested) apart from the processes.
Process names: `kafka-<i>` are the brokers (combined nodes: broker and controller in one JVM), and
`controller-<j>` the controllers when they run apart (node id `CONTROLLER_ID_BASE + j`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from chaos.env import kafka
from chaos.env.state import NodeState
from faults.targets import CLUSTER_NODES

MIN_INSYNC = 2
REPLICA_LAG_MS = 4000
"""A follower that has not caught up for this long leaves the ISR: seconds, not the default 30."""
CONTROLLER_ID_BASE = 10
"""Separate controller j's node id: apart from the brokers' 0..N-1."""


@dataclass(frozen=True)
class NodePorts:
    direct: int
    replication: int
    controller: int
    """The controller listener: inside the node when combined, else of `controller-<i>`'s process."""
    links: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Client link -> (this node's listener for it, the port of its proxy for this node)."""


def node_ports(node: NodeState) -> NodePorts:
    return NodePorts(node.direct, node.replication, node.controller,
                     {link: (ports.broker, ports.proxy) for link, ports in node.links.items()})


def node_name(index: int) -> str:
    return f"kafka-{index}"


def controller_name(index: int) -> str:
    return f"controller-{index}"


def process_index(name: str) -> int:
    """A process's place among the cluster's: brokers first, then controllers (pair addresses use it)."""
    kind, index = name.rsplit("-", 1)
    return int(index) + (CLUSTER_NODES if kind == "controller" else 0)


def client_proxy(link: str, index: int) -> str:
    """The proxy of client link `link` in front of node `index`: node 0's has the link's own name, so
    that one broker and a cluster name their first proxy alike."""
    return link if index == 0 else f"{link}@{node_name(index)}"


def pair_address(source: int, target: int) -> str:
    """The loopback address at which process `source` reaches process `target`: this pair's own."""
    return f"127.77.{source + 1}.{target + 1}"


def hosts_file(own: str, peers: list[str]) -> str:
    """A process's view of the cluster's names: itself directly, each peer through the pair's proxies."""
    lines = ["127.0.0.1 localhost", f"127.0.0.1 {socket.gethostname()}", f"127.0.0.1 {own}"]
    lines += [f"{pair_address(process_index(own), process_index(peer))} {peer}" for peer in peers if peer != own]
    return "\n".join(lines) + "\n"


def voters(ports: list[NodePorts], separate: bool) -> str:
    """`controller.quorum.voters`: each controller by name, on its controller port."""
    if separate:
        return ",".join(f"{CONTROLLER_ID_BASE + i}@{controller_name(i)}:{p.controller}" for i, p in enumerate(ports))
    return ",".join(f"{i}@{node_name(i)}:{p.controller}" for i, p in enumerate(ports))


def node_properties(index: int, ports: list[NodePorts], data_dir: Path, separate: bool = False) -> str:
    """A broker's configuration: a combined node's (with its controller), or a broker's alone."""
    own = ports[index]
    replicas = str(len(ports))
    clients = {kafka.listener_name(link): ports for link, ports in own.links.items()}
    settings = {
        "process.roles": "broker" if separate else "broker,controller",
        "node.id": str(index),
        "controller.quorum.voters": voters(ports, separate),
        "listeners": ",".join([f"DIRECT://127.0.0.1:{own.direct}", f"REPLICATION://127.0.0.1:{own.replication}",
                               *([] if separate else [f"CONTROLLER://127.0.0.1:{own.controller}"]),
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
        # Leadership moves only when an experiment says so (a fault, an `elect`): Kafka's own
        # preferred-leader rebalance runs on a 300 s timer, which on a cluster shared by many runs
        # fires inside one of them at random and hands a moved partition back behind its back.
        "auto.leader.rebalance.enable": "false",
        # A hard-killed node is fenced by the active controller once its session lapses; it is
        # restarted only after that (see `KafkaCluster.wait_fenced`), so that its registration does not race it.
        "broker.session.timeout.ms": "5000",
        "broker.heartbeat.interval.ms": "500",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def controller_properties(index: int, ports: list[NodePorts], data_dir: Path) -> str:
    """A separate controller's configuration: its quorum listener, and the voters by name."""
    settings = {
        "process.roles": "controller",
        "node.id": str(CONTROLLER_ID_BASE + index),
        "controller.quorum.voters": voters(ports, separate=True),
        "listeners": f"CONTROLLER://127.0.0.1:{ports[index].controller}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(data_dir),
        "broker.session.timeout.ms": "5000",
        "broker.heartbeat.interval.ms": "500",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())
