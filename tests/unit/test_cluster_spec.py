"""A three-broker cluster: each node's configuration advertises the inter-node listeners by host
name, its hosts file sends each peer's name to that pair's own address, and an experiment may
target the nodes and the pair links only when it asks for the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.env.cluster import NodePorts, client_proxy, hosts_file, node_properties, pair_address
from chaos.errors import SpecError
from chaos.experiment.loader import parse_experiment
from faults.targets import PAIR_LINKS, pair_link

PORTS = [NodePorts(10 + 10 * i, 11 + 10 * i, 12 + 10 * i, {"worker-kafka": (13 + 10 * i, 14 + 10 * i)})
         for i in range(3)]


def settings(index: int) -> dict[str, str]:
    text = node_properties(index, PORTS, Path("/data"))
    return dict(line.split("=", 1) for line in text.splitlines())


def test_inter_node_listeners_are_advertised_by_name_and_clients_at_their_proxy():
    node = settings(1)
    assert node["node.id"] == "1"
    assert node["controller.quorum.voters"] == "0@kafka-0:12,1@kafka-1:22,2@kafka-2:32"
    assert "REPLICATION://kafka-1:21" in node["advertised.listeners"]
    assert "LINK_WORKER_KAFKA://127.0.0.1:24" in node["advertised.listeners"]  # the proxy, not the listener
    assert all(address.split("://")[1].startswith("127.0.0.1:") for address in node["listeners"].split(","))
    assert node["min.insync.replicas"] == "2" and node["transaction.state.log.replication.factor"] == "3"


def test_each_node_reaches_each_peer_at_the_pairs_own_address():
    lines = dict(reversed(line.split()) for line in hosts_file(0, 3).splitlines())
    assert lines["kafka-0"] == "127.0.0.1"
    assert lines["kafka-1"] == pair_address(0, 1) != pair_address(1, 0)
    assert len({pair_address(a, b) for a in range(3) for b in range(3) if a != b}) == 6


def test_every_direction_of_every_pair_is_a_link_of_its_own():
    assert len(PAIR_LINKS) == len(set(PAIR_LINKS)) == 12
    assert pair_link(0, 1) == "kafka-0->kafka-1" and pair_link(1, 2, controller=True) == "kafka-1->controller-2"
    assert client_proxy("worker-kafka", 0) == "worker-kafka"
    assert client_proxy("worker-kafka", 2) == "worker-kafka@kafka-2"


def spec(brokers: int | None, target: str, kind: str = "kill") -> str:
    environment = f"environment:\n  kafka:\n    brokers: {brokers}\n" if brokers else ""
    return (f"name: unit\nseed: 1\n{environment}workload:\n  records: 100\n  rate: 100\n"
            f"faults:\n  - after_ready: 1s\n    kind: {kind}\n    target: {target}\n    duration: 1s\n")


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_experiment(text, "exp.yaml")
    return info.value.problems


def test_nodes_and_pair_links_are_targets_of_a_cluster_only():
    assert parse_experiment(spec(3, "kafka-1"), "exp.yaml").environment.kafka.brokers == 3
    assert parse_experiment(spec(3, "kafka-1->kafka-0", "down"), "exp.yaml").faults[0].target == "kafka-1->kafka-0"
    assert any("set environment.kafka.brokers: 3" in p for p in problems_of(spec(None, "kafka-1")))
    assert any("set environment.kafka.brokers: 3" in p for p in problems_of(spec(None, "kafka-0->kafka-2", "down")))
    assert any("name a node" in p for p in problems_of(spec(3, "kafka")))
    assert any("brokers" in p for p in problems_of(spec(2, "kafka-1")))


def test_a_cluster_role_is_a_target_of_a_kafka_pipeline_on_a_cluster():
    for role in ("leader:input", "leader:input/2", "group-coordinator"):
        assert parse_experiment(spec(3, role), "exp.yaml").faults[0].target == role
        assert any("set environment.kafka.brokers: 3" in p for p in problems_of(spec(None, role)))
    assert any("unknown process 'leader:output'" in p for p in problems_of(spec(3, "leader:output")))
    batch = spec(3, "leader:input").replace("workload:", "pipeline:\n  source: parquet-batch\nworkload:")
    assert any("source must be Kafka" in p for p in problems_of(batch))
