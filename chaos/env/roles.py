"""Which node of a cluster plays a role now: a partition's leader, the active controller, or the
coordinator of a consumer group or a transactional id.

Resolved when a fault fires, never at load: leadership moves under faults. The coordinators follow
Kafka's own placement: a group's or a transactional id's coordinator is the leader of partition
`Utils.abs(java_hash(id)) % partitions` of `__consumer_offsets` or `__transaction_state`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from confluent_kafka import ElectionType, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from chaos.env.cluster import KafkaCluster
from chaos.env.cluster_config import node_name
from chaos.errors import EnvironmentFailure
from faults.targets import LEADER

OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTIONS_TOPIC = "__transaction_state"
QUORUM_STATE = Path("__cluster_metadata-0") / "quorum-state"
ELECTION_WAIT = 15.0
"""How long a role may have no player (a leader or a controller mid-election) before resolving fails."""
IN_SYNC_TIMEOUT = 120.0
"""How long a rolling restart waits for every partition's full ISR after restarting a node."""


@dataclass(frozen=True)
class RoleNames:
    """What the pipeline's roles are roles of: its input topic, its consumer group, and its Kafka
    sink's transactional id (None when the sink is not Kafka)."""

    topic: str
    group: str
    transactional_id: str | None = None


def java_hash(text: str) -> int:
    """Java's `String.hashCode` (UTF-16 code units, 32-bit overflow), as Kafka places coordinators with it."""
    units = text.encode("utf-16-be")
    value = 0
    for offset in range(0, len(units), 2):
        value = (31 * value + int.from_bytes(units[offset:offset + 2], "big")) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def coordinator_partition(key: str, partitions: int) -> int:
    """Kafka's `Utils.abs(key.hashCode) % partitions`: the partition whose leader coordinates `key`.
    (`Utils.abs` is `Math.abs` with `Integer.MIN_VALUE` mapped to 0, not a masked sign bit.)"""
    value = java_hash(key)
    return (0 if value == -2**31 else abs(value)) % partitions


def wait_partition(admin: AdminClient, topic: str, partition: int, ready: Callable[[Any, set[int]], bool],
                   timeout: float, failure: str) -> Any:
    """Poll the metadata of `topic`'s `partition` until `ready(partition metadata, live brokers)`;
    returns that metadata, or raises EnvironmentFailure(`failure`) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(topic, timeout=10)
        found = metadata.topics[topic].partitions.get(partition)
        if found is not None and ready(found, set(metadata.brokers)):
            return found
        if time.monotonic() > deadline:
            raise EnvironmentFailure(failure)
        time.sleep(0.5)


def partition_leader(admin: AdminClient, topic: str, partition: int) -> int:
    """The node leading `topic`'s `partition`, waiting out an election in progress."""
    return wait_partition(admin, topic, partition, lambda found, _: found.leader >= 0, ELECTION_WAIT,
                          f"partition {partition} of {topic} has had no leader for {ELECTION_WAIT:.0f}s").leader


def coordinator(admin: AdminClient, topic: str, key: str) -> int:
    partitions = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
    if not partitions:
        raise EnvironmentFailure(f"{topic} does not exist: its coordinators cannot be found")
    return partition_leader(admin, topic, coordinator_partition(key, partitions))


def controller_leader(data_dirs: list[Path]) -> int:
    """The active controller: the leader of the newest epoch any node's quorum state records (a
    node cut off from the quorum keeps an older one)."""
    deadline = time.monotonic() + ELECTION_WAIT
    while True:
        states = [json.loads(path.read_text()) for path in (d / QUORUM_STATE for d in data_dirs) if path.exists()]
        newest = max(states, key=lambda state: state.get("leaderEpoch", -1), default={})
        if newest.get("leaderId", -1) >= 0:
            return int(newest["leaderId"])
        if time.monotonic() > deadline:
            raise EnvironmentFailure(f"the controller quorum has had no leader for {ELECTION_WAIT:.0f}s")
        time.sleep(0.5)


def node_playing(admin: AdminClient, data_dirs: list[Path], role: str, names: RoleNames) -> int:
    """The node id that plays `role` (`faults.targets.CLUSTER_ROLES`) now. `admin` is held by the
    caller: a client collected mid-call never resolves its futures."""
    leader = LEADER.fullmatch(role)
    if leader is not None:
        return partition_leader(admin, names.topic, int(leader.group("partition") or 0))
    if role == "group-coordinator":
        return coordinator(admin, OFFSETS_TOPIC, names.group)
    if role == "txn-coordinator":
        if names.transactional_id is None:
            raise EnvironmentFailure("txn-coordinator: the pipeline's sink has no transactional id")
        return coordinator(admin, TRANSACTIONS_TOPIC, names.transactional_id)
    if role == "controller-leader":
        return controller_leader(data_dirs)
    raise ValueError(f"{role} is not a role of a cluster's nodes")



class ClusterRoles:
    """One run's view of a cluster's leadership (`faults.injector.ClusterControl`): who plays a role,
    elections, and whether every replica is back in sync."""

    def __init__(self, admin: Callable[[], AdminClient], cluster: KafkaCluster, names: RoleNames):
        self.admin = admin
        self.cluster = cluster
        self.names = names
        self.separate_controllers = cluster.separate

    def node_playing(self, role: str) -> str:
        """The process that plays `role` now: a broker, or (`controller-leader`) the active controller's."""
        admin = self.admin()
        node_id = node_playing(admin, self.cluster.data_dirs(), role, self.names)
        return self.cluster.controller_process(node_id) if role == "controller-leader" else node_name(node_id)

    def elect(self, role: str, unclean: bool) -> None:
        leader = LEADER.fullmatch(role)
        if leader is None:
            raise ValueError(f"an election is held for a partition of the input, not for {role}")
        partition = TopicPartition(self.names.topic, int(leader.group("partition") or 0))
        admin = self.admin()
        if unclean:
            self._wait_leaderless(admin, partition)
        else:
            self._wait_preferred_in_sync(admin, partition)
        kind = ElectionType.UNCLEAN if unclean else ElectionType.PREFERRED
        outcome = admin.elect_leaders(kind, [partition]).result(timeout=40)  # 2.16's binding refuses its timeouts
        error = next(iter(outcome.values()), None)  # a KafkaError (or an exception wrapping one), None when held
        code = error.args[0] if isinstance(error, KafkaException) else error
        if code is not None and code.code() != KafkaError.ELECTION_NOT_NEEDED:
            raise EnvironmentFailure(f"the {kind.name.lower()} election for {role} failed: {error}")
        if not unclean:
            self._wait_preferred_leads(admin, partition)

    @staticmethod
    def _wait_preferred_leads(admin: AdminClient, partition: TopicPartition) -> None:
        """The controller answers an election once it has committed the new leader; each broker
        learns it from the metadata log a moment later, and the broker the Admin client asks may
        still name the old leader. Resolving the role after the election waits for the news."""
        wait_partition(admin, partition.topic, partition.partition,
                       lambda found, _: bool(found.replicas) and found.leader == found.replicas[0], ELECTION_WAIT,
                       f"the metadata still did not name the preferred replica of {partition.topic}/"
                       f"{partition.partition} as its leader {ELECTION_WAIT:.0f}s after the election")

    @staticmethod
    def _wait_leaderless(admin: AdminClient, partition: TopicPartition) -> None:
        """An unclean election is only held for a partition with no leader: one whose leader died is
        leaderless once the controller has fenced it (seconds later), and that is waited for."""
        wait_partition(admin, partition.topic, partition.partition, lambda found, _: found.leader < 0,
                       IN_SYNC_TIMEOUT, f"{partition.topic}/{partition.partition} still had a leader after "
                       f"{IN_SYNC_TIMEOUT:.0f}s: an unclean election is for a partition without one")

    @staticmethod
    def _wait_preferred_in_sync(admin: AdminClient, partition: TopicPartition) -> None:
        """A preferred election fails while the first replica is down or not in sync (a node just
        restarted is still catching up): it is held once the replica is a live broker in the ISR,
        within `IN_SYNC_TIMEOUT`."""
        def ready(found: Any, brokers: set[int]) -> bool:
            return bool(found.replicas) and found.replicas[0] in found.isrs and found.replicas[0] in brokers

        wait_partition(admin, partition.topic, partition.partition, ready, IN_SYNC_TIMEOUT,
                       f"the preferred replica of {partition.topic}/{partition.partition} was not in sync within "
                       f"{IN_SYNC_TIMEOUT:.0f}s")

    def wait_in_sync(self) -> None:
        wait_in_sync(self.admin())


def wait_in_sync(admin: AdminClient, timeout: float = IN_SYNC_TIMEOUT) -> None:
    """Until every partition's ISR holds all its replicas: a node restarted has caught up."""
    deadline = time.monotonic() + timeout
    while (lagging := under_replicated(admin)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if lagging:
        raise EnvironmentFailure(f"{len(lagging)} partitions were still short of replicas in sync after "
                                 f"{timeout:.0f}s: {', '.join(lagging[:5])}")


def under_replicated(admin: AdminClient) -> list[str]:
    """`topic/partition` of each partition whose ISR lacks one of its replicas (all of them while the
    metadata does not answer)."""
    try:
        topics = admin.list_topics(timeout=10).topics
    except KafkaException as e:
        return [f"(no metadata: {e})"]
    return [f"{name}/{index}" for name, topic in topics.items() for index, partition in topic.partitions.items()
            if set(partition.isrs) != set(partition.replicas)]
