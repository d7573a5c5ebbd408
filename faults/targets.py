"""The names experiments may target: network links and supervised processes."""

from __future__ import annotations

import difflib
import re
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
"""A cluster's nodes: services that process faults may kill, terminate or pause, restarted on their data."""


def pair_link(source: int, target: int, controller: bool = False) -> str:
    """The link carrying node `source`'s connections to node `target`'s replication (or controller) listener."""
    return f"kafka-{source}->{'controller' if controller else 'kafka'}-{target}"


PAIR_LINKS = tuple(pair_link(a, b, controller) for a in range(CLUSTER_NODES) for b in range(CLUSTER_NODES)
                   if a != b for controller in (False, True))
"""The links between a cluster's nodes: network faults may target each direction of each pair."""
CLUSTER_ROLES = ("leader:input", "group-coordinator", "txn-coordinator", "controller-leader")
"""A cluster's nodes named by what they do when the fault fires: the leader of the input topic's
partition 0 (`leader:input/<p>` for partition p), the coordinator of the pipeline's consumer group,
the transaction coordinator of its Kafka sink (worker 0's transactional id), and the active controller."""
LEADER = re.compile(r"leader:input(/(?P<partition>[0-9]{1,2}))?")


def cluster_role(target: str) -> bool:
    return target in CLUSTER_ROLES or LEADER.fullmatch(target) is not None


def cluster_node_or_role(target: str) -> str:
    """`target` if it is a node of the cluster or a role one of them plays; else an error naming both."""
    return target if cluster_role(target) else known(target, NODES + CLUSTER_ROLES, "node")


def side_of_split(target: str) -> list[str]:
    """The nodes (or roles) on one side of a split, written `kafka-0` or `kafka-0,kafka-1`: at least
    one, and not all of them (then there would be no other side)."""
    side = [cluster_node_or_role(part.strip()) for part in target.split(",")]
    if len(set(side)) != len(side):
        raise ValueError(f"{target!r} names a node twice")
    if set(NODES) <= set(side):
        raise ValueError(f"{target!r} is the whole cluster: a split needs nodes on the other side")
    return side


def links_between(side: set[str], direction: str, controller: bool | None = None) -> list[str]:
    """The pair links from the nodes of `side` to the rest (`outbound`), from the rest to them
    (`inbound`), or both; only the replication (`controller=False`) or quorum (`True`) ones if asked."""
    inside = [int(node.split("-")[1]) for node in sorted(side)]
    outside = [index for index in range(CLUSTER_NODES) if index not in inside]
    kinds = (False, True) if controller is None else (controller,)
    pairs = [(a, b) for a in inside for b in outside] if direction in ("both", "outbound") else []
    pairs += [(b, a) for a in inside for b in outside] if direction in ("both", "inbound") else []
    return [pair_link(source, target, kind) for source, target in pairs for kind in kinds]


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
