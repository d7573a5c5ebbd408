"""The names experiments may target: network links and supervised processes."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Sequence

SERVICES = ("kafka", "postgres")
"""The environment's services that process faults may pause, kill or terminate (then restart)."""

MAX_WORKERS = 8
PROCESSES = (("coordinator",) + tuple(f"worker-{i}" for i in range(MAX_WORKERS))
             + tuple(f"connect-{i}" for i in range(MAX_WORKERS)) + tuple(f"command-{i}" for i in range(MAX_WORKERS)))
"""Processes the runner supervises and faults may kill: our runtime's coordinator and workers, a
Kafka Connect engine's workers, or the processes of a `command` pipeline."""
CLUSTER_NODES = 3
"""The nodes of a cluster environment (`environment.kafka.brokers`), `kafka-0` ... `kafka-2`."""
NODES = tuple(f"kafka-{i}" for i in range(CLUSTER_NODES))
"""A cluster's nodes (its brokers, and its controllers too when combined): services that process
faults may kill, terminate or pause, restarted on their data."""
CONTROLLERS = tuple(f"controller-{i}" for i in range(CLUSTER_NODES))
"""A cluster's controller processes, when they run apart from the brokers (`controllers: separate`)."""


def pair_link(source: int, target: int, controller: bool = False) -> str:
    """The link carrying broker (or node) `source`'s connections to node `target`'s replication
    listener, or to its controller's listener."""
    return f"kafka-{source}->{'controller' if controller else 'kafka'}-{target}"


@dataclass(frozen=True)
class PairLink:
    """One direction between two of a cluster's processes: `source` opens the connections, to
    `target`'s replication listener or (`quorum`) its controller listener."""

    name: str
    source: str
    target: str
    quorum: bool


def pair_links(separate: bool) -> list[PairLink]:
    """Every link between a cluster's processes. Combined nodes: each node to each other's
    replication and controller listeners (12). Separate controllers: each broker to each other
    broker, each broker to every controller (its own index's too: another process), and each
    controller to each other (21)."""
    links = []
    for a in range(CLUSTER_NODES):
        for b in range(CLUSTER_NODES):
            if a != b:
                links.append(PairLink(pair_link(a, b), f"kafka-{a}", f"kafka-{b}", False))
            if a != b or separate:
                links.append(PairLink(pair_link(a, b, True), f"kafka-{a}",
                                      f"controller-{b}" if separate else f"kafka-{b}", True))
            if a != b and separate:
                links.append(PairLink(f"controller-{a}->controller-{b}", f"controller-{a}", f"controller-{b}", True))
    return links


PAIR_LINKS = tuple(link.name for link in pair_links(separate=True))
"""The links between a cluster's processes, in either form: network faults may target each direction."""
COMBINED_PAIR_LINKS = tuple(link.name for link in pair_links(separate=False))
"""The links that a cluster of combined nodes has (the others need `controllers: separate`)."""
CLUSTER_ROLES = ("leader:input", "group-coordinator", "txn-coordinator", "controller-leader")
"""A cluster's nodes named by what they do when the fault fires: the leader of the input topic's
partition 0 (`leader:input/<p>` for partition p), the coordinator of the pipeline's consumer group,
the transaction coordinator of its Kafka sink (worker 0's transactional id), and the active controller."""
LEADER = re.compile(r"leader:input(/(?P<partition>[0-9]{1,2}))?")


def cluster_role(target: str) -> bool:
    return target in CLUSTER_ROLES or LEADER.fullmatch(target) is not None


def cluster_node_or_role(target: str) -> str:
    """`target` if it is a node of the cluster or a role one of them plays; else an error naming both."""
    return target if cluster_role(target) else known(target, NODES + CONTROLLERS + CLUSTER_ROLES, "node")


def side_of_split(target: str) -> list[str]:
    """The nodes (or roles) on one side of a split, written `kafka-0` or `kafka-0,kafka-1`: at least
    one, each once. (Whether any link crosses it depends on the cluster's form: `links_between`.)"""
    side = [cluster_node_or_role(part.strip()) for part in target.split(",")]
    if len(set(side)) != len(side):
        raise ValueError(f"{target!r} names a node twice")
    return side


def links_between(side: set[str], direction: str, quorum: bool | None = None, separate: bool = False) -> list[str]:
    """The pair links from the processes of `side` to the rest (`outbound`), from the rest to them
    (`inbound`), or both; only the replication (`quorum=False`) or quorum (`True`) ones if asked."""
    chosen = []
    for link in pair_links(separate):
        if quorum is not None and link.quorum != quorum:
            continue
        out = link.source in side and link.target not in side
        into = link.target in side and link.source not in side
        if (out and direction in ("both", "outbound")) or (into and direction in ("both", "inbound")):
            chosen.append(link.name)
    return chosen


ROLES = ("connect-coordinator",)
"""Processes named by what they do, resolved when the fault fires: `connect-coordinator` is the
Connect worker whose task runs the Iceberg sink's commit coordinator."""


def suggest(word: str, choices: Sequence[str]) -> str:
    """'; did you mean X?' when a close match exists, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def known(name: str, choices: Sequence[str], what: str) -> str:
    """`name` if it is one of `choices`; otherwise an error listing them, with a did-you-mean."""
    if name not in choices:
        plural = "processes" if what == "process" else f"{what}s"
        raise ValueError(f"unknown {what} {name!r} ({plural}: {', '.join(choices)}){suggest(name, choices)}")
    return name
