"""A three-node KRaft cluster whose nodes reach each other only through per-pair Toxiproxy links.

The proof that the wiring is real: cutting one direction between two named nodes cuts exactly that
direction. A follower fetches from its leader, so the link follower->leader carries a partition's
replication and leader->follower does not: cut the second and nothing changes; cut the first and
that follower falls out of the ISR while acks=all writes go on, replicated through the third node.
Then the cluster as an experiment's environment: a leading node killed and restarted on its data,
and a follower cut off its leader only.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from chaos.env.cluster import REPLICA_LAG_MS, KafkaCluster, running_cluster
from drivers.sdk.events import Event
from faults.targets import pair_link
from tests.integration.conftest import REPO
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


# --- the cluster as an experiment's environment (`environment.kafka.brokers: 3`) ---

EXPERIMENTS = REPO / "experiments" / "cluster"


def test_an_experiment_kills_the_inputs_leader_and_loses_nothing(run_experiment):
    """`leader:input` resolves, when the fault fires, to the node leading the input's partition 0;
    the timeline names it, and it is killed and started again on its data."""
    run = run_experiment(EXPERIMENTS / "leader-kill.yaml")
    assert run.code == 0, run.stdout + run.stderr
    history = run.history()
    (resolved,) = [e for e in history if e["event"] == Event.FAULT_ROLE_RESOLVED]
    node = resolved["process"]
    assert resolved["role"] == "leader:input" and node in ("kafka-0", "kafka-1", "kafka-2")
    faults = [e["event"] for e in history if e["event"] in (Event.FAULT_INJECT, Event.FAULT_HEAL)]
    assert faults == [Event.FAULT_INJECT, Event.FAULT_HEAL]
    assert run.verdict("source-lost-acked-writes")["status"] == "pass"
    assert run.verdict("no-loss")["counts"] == {"source_records": 6000, "lost": 0}
    # The node came back on its data: its log shows a second start; the others started once.
    for name in ("kafka-0", "kafka-1", "kafka-2"):
        starts = (run.run_dir / "logs" / f"{name}-server.log").read_text().count("Kafka Server started")
        assert starts == (2 if name == node else 1), (name, starts)


def test_an_experiment_cuts_one_follower_off_its_leader_only(run_experiment):
    """`kafka-1->kafka-0` down: kafka-0 drops kafka-1 from the ISR of the partitions it leads (and
    only kafka-1); no other node loses a follower, and nothing is lost. (Taking kafka-1 back after
    the heal may come after the run has ended: the standalone test above waits for it.)"""
    run = run_experiment(EXPERIMENTS / "follower-cut-from-leader.yaml")
    assert run.code == 0, run.stdout + run.stderr
    leader_log = (run.run_dir / "logs" / "kafka-0-server.log").read_text()
    shrunk = re.findall(r"Shrinking ISR from [0-2,]+ to ([0-2,]+)\.", leader_log)
    assert shrunk and all(sorted(isr.split(",")) == ["0", "2"] for isr in shrunk), shrunk
    for other in ("kafka-1", "kafka-2"):  # no other node lost a follower
        assert "Shrinking ISR" not in (run.run_dir / "logs" / f"{other}-server.log").read_text()
    assert run.verdict("no-loss")["status"] == "pass"
