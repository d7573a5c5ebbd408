"""A three-node KRaft cluster whose nodes reach each other only through per-pair Toxiproxy links.

The proof that the wiring is real: cutting one direction between two named nodes cuts exactly that
direction. A follower fetches from its leader, so the link follower->leader carries a partition's
replication and leader->follower does not: cut the second and nothing changes; cut the first and
that follower falls out of the ISR while acks=all writes go on, replicated through the third node.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from chaos.env.cluster import REPLICA_LAG_MS, KafkaCluster, pair_link, running_cluster
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TOPIC = "replicated"
LEADER, FOLLOWER, OTHER = 0, 1, 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> KafkaCluster:
    with running_cluster(Path(tmp_path_factory.mktemp("cluster"))) as running:
        yield running


def isr(admin: AdminClient, topic: str = TOPIC) -> list[int]:
    """Partition 0's in-sync replicas (none while the new topic's metadata is still on its way)."""
    partition = admin.list_topics(topic, timeout=10).topics[topic].partitions.get(0)
    return sorted(partition.isrs) if partition is not None else []


def produce(bootstrap: str, count: int) -> int:
    """`count` records with acks=all and idempotence; returns how many the cluster acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "delivery.timeout.ms": 20000, "linger.ms": 5})
    acked = []
    for n in range(count):
        producer.produce(TOPIC, value=str(n).encode(), on_delivery=lambda err, _: acked.append(err is None))
        producer.poll(0)
    assert producer.flush(30) == 0
    return sum(acked)


def test_the_cluster_has_three_brokers_and_replicates_through_the_pair_links(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_direct})
    assert len(admin.list_topics(timeout=10).brokers) == 3
    admin.create_topics([NewTopic(TOPIC, 1, replica_assignment=[[LEADER, FOLLOWER, OTHER]])])[TOPIC].result(30)
    wait_for(lambda: isr(admin) == [0, 1, 2], 30, "a full ISR")
    assert admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0].leader == LEADER
    assert produce(cluster.bootstrap_direct, 200) == 200
    assert len(cluster.pair_links()) == 12 and set(cluster.pair_links()) <= set(cluster.toxiproxy.proxies())


def test_a_one_way_cut_between_two_nodes_cuts_exactly_that_direction(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_direct})
    proxies = cluster.toxiproxy
    # leader -> follower carries none of the partition's replication: the ISR stays whole.
    proxies.set_enabled(pair_link(LEADER, FOLLOWER), False)
    try:
        deadline = time.monotonic() + 2.5 * REPLICA_LAG_MS / 1000
        while time.monotonic() < deadline:
            assert produce(cluster.bootstrap_direct, 50) == 50
            assert isr(admin) == [0, 1, 2]
    finally:
        proxies.set_enabled(pair_link(LEADER, FOLLOWER), True)
    # follower -> leader is how the follower fetches: it falls out of the ISR, and acks=all writes
    # go on with the leader and the other node (min.insync.replicas 2).
    proxies.set_enabled(pair_link(FOLLOWER, LEADER), False)
    try:
        def shrunk() -> bool:
            assert produce(cluster.bootstrap_direct, 50) == 50
            return isr(admin) == [LEADER, OTHER]
        wait_for(shrunk, 30, f"kafka-{FOLLOWER} to leave the ISR", interval=0.5)
        assert produce(cluster.bootstrap_direct, 200) == 200
    finally:
        proxies.set_enabled(pair_link(FOLLOWER, LEADER), True)
    wait_for(lambda: isr(admin) == [0, 1, 2], 60, f"kafka-{FOLLOWER} to catch up and rejoin the ISR", interval=0.5)


def test_a_killed_leader_is_replaced_from_the_isr_and_no_acked_write_is_lost(cluster, tmp_path):
    """A hard kill of the partition's leader under acks=all load: a follower in the ISR takes over,
    every acknowledged record is still in the topic, and the node, restarted on its data once the
    controller has fenced it, rejoins the ISR."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_direct})
    topic = "killed-leader"
    admin.create_topics([NewTopic(topic, 1, replica_assignment=[[OTHER, LEADER, FOLLOWER]])])[topic].result(30)
    wait_for(lambda: isr(admin, topic) == [0, 1, 2], 30, "a full ISR")
    producer = Producer({"bootstrap.servers": cluster.bootstrap_direct, "acks": "all", "enable.idempotence": True,
                         "delivery.timeout.ms": 60000, "linger.ms": 5})
    acked: list[int] = []

    def send(first: int, count: int) -> None:
        for n in range(first, first + count):
            producer.produce(topic, value=str(n).encode(),
                             on_delivery=lambda err, msg: err is None and acked.append(int(msg.value())))
            producer.poll(0)
            time.sleep(0.002)

    send(0, 500)
    node = cluster.node(OTHER)
    node.kill()
    send(500, 500)
    assert producer.flush(60) == 0
    leader = admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader
    assert leader in (LEADER, FOLLOWER)
    assert len(acked) == 1000
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_direct, "group.id": "killed-leader-check",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    # From the beginning, with no group coordinator: __consumer_offsets (replication factor 3) cannot
    # be created while a node is down.
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while len(seen) < len(acked) and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen.add(int(message.value()))
    consumer.close()
    assert set(acked) <= seen
    cluster.restart(OTHER, detached=False)
    wait_for(lambda: isr(admin, topic) == [0, 1, 2], 60, "the restarted node to rejoin the ISR", interval=0.5)
