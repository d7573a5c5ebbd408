"""A three-broker cluster: each node's configuration advertises the inter-node listeners by host
name, its hosts file sends each peer's name to that pair's own address, and an experiment may
target the nodes and the pair links only when it asks for the cluster."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from chaos.checkers.source_acks import check_source_acks
from chaos.env.cluster_config import (
    NodePorts,
    client_proxy,
    controller_properties,
    hosts_file,
    node_properties,
    pair_address,
)
from chaos.env.roles import coordinator_partition, java_hash
from chaos.errors import SpecError
from chaos.experiment.loader import parse_experiment
from faults import cluster as cluster_faults
from faults.catalog import IsolateFault
from faults.injector import FaultContext
from faults.targets import COMBINED_PAIR_LINKS, PAIR_LINKS, links_between, pair_link, pair_links, side_of_split

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
    lines = dict(reversed(line.split()) for line in hosts_file("kafka-0", ["kafka-0", "kafka-1", "kafka-2"]).splitlines())
    assert lines["kafka-0"] == "127.0.0.1"
    assert lines["kafka-1"] == pair_address(0, 1) != pair_address(1, 0)
    assert len({pair_address(a, b) for a in range(6) for b in range(6) if a != b}) == 30


def test_controllers_apart_are_processes_of_their_own_that_the_brokers_reach_by_name():
    data = Path("/data")
    broker = dict(line.split("=", 1) for line in node_properties(1, PORTS, data, separate=True).splitlines())
    assert broker["process.roles"] == "broker" and "CONTROLLER://" not in broker["listeners"]
    assert broker["controller.quorum.voters"] == "10@controller-0:12,11@controller-1:22,12@controller-2:32"
    controller = dict(line.split("=", 1) for line in controller_properties(1, PORTS, data).splitlines())
    assert controller["process.roles"] == "controller" and controller["node.id"] == "11"
    assert controller["listeners"] == "CONTROLLER://127.0.0.1:22"
    names = ["kafka-0", "kafka-1", "kafka-2", "controller-0", "controller-1", "controller-2"]
    lines = dict(reversed(line.split()) for line in hosts_file("kafka-1", names).splitlines())
    assert lines["controller-1"] == pair_address(1, 4)  # its own index's controller is another process
    assert lines["kafka-1"] == "127.0.0.1"


def test_every_direction_of_every_pair_is_a_link_of_its_own():
    assert len(COMBINED_PAIR_LINKS) == len(set(COMBINED_PAIR_LINKS)) == 12
    assert len(PAIR_LINKS) == len(set(PAIR_LINKS)) == 21 and set(COMBINED_PAIR_LINKS) <= set(PAIR_LINKS)
    separate = {link.name: (link.source, link.target) for link in pair_links(separate=True)}
    assert separate["kafka-1->controller-1"] == ("kafka-1", "controller-1")  # apart, a broker's own controller
    assert separate["controller-0->controller-2"] == ("controller-0", "controller-2")
    assert {link.target for link in pair_links(separate=False)} == {"kafka-0", "kafka-1", "kafka-2"}
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


# --- the cluster's own faults: isolate (a split), rolling_restart, elect; the roles they resolve ---

def test_isolating_a_side_cuts_the_links_between_it_and_the_rest_in_the_directions_asked():
    outbound = links_between({"kafka-1"}, "outbound")
    assert sorted(outbound) == ["kafka-1->controller-0", "kafka-1->controller-2", "kafka-1->kafka-0", "kafka-1->kafka-2"]
    inbound = links_between({"kafka-1"}, "inbound")
    assert sorted(inbound) == ["kafka-0->controller-1", "kafka-0->kafka-1", "kafka-2->controller-1", "kafka-2->kafka-1"]
    assert sorted(links_between({"kafka-1"}, "both")) == sorted(outbound + inbound)
    assert links_between({"kafka-0", "kafka-1"}, "outbound", quorum=True) == [
        "kafka-0->controller-2", "kafka-1->controller-2"]  # the majority cut from the minority's controller
    assert all(link in COMBINED_PAIR_LINKS for link in links_between({"kafka-2"}, "both"))
    # Controllers apart: isolating the active one cuts the other controllers and every broker from it.
    assert sorted(links_between({"controller-1"}, "inbound", separate=True)) == [
        "controller-0->controller-1", "controller-2->controller-1",
        "kafka-0->controller-1", "kafka-1->controller-1", "kafka-2->controller-1"]
    assert links_between({"kafka-0", "kafka-1", "kafka-2"}, "both") == []  # combined: no other side
    assert len(links_between({"kafka-0", "kafka-1", "kafka-2"}, "both", separate=True)) == 9  # the quorum's


def test_a_side_is_nodes_or_roles_each_named_once():
    assert side_of_split("kafka-0,kafka-2") == ["kafka-0", "kafka-2"]
    assert side_of_split("controller-leader") == ["controller-leader"]
    with pytest.raises(ValueError, match="did you mean 'controller-leader'"):
        side_of_split("kafka-0,controler-leader")
    with pytest.raises(ValueError, match="twice"):
        side_of_split("kafka-0,kafka-0")


class RecordingProxies:
    """An in-memory stand-in for the Toxiproxy client: which toxics are on which proxy."""

    def __init__(self) -> None:
        self.toxics: dict[str, list[str]] = {}

    def add_toxic(self, proxy: str, toxic) -> None:
        self.toxics.setdefault(proxy, []).append(toxic.name)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.toxics[proxy].remove(name)


def test_an_isolated_role_is_resolved_when_the_fault_fires_and_its_heal_removes_every_toxic():
    proxies = RecordingProxies()
    resolved = []
    context = FaultContext(toxiproxy=proxies, processes=None, services=None, disk_control=Path("/unused"),
                           resolve_role=lambda role: resolved.append(role) or "kafka-2")
    fault = IsolateFault(kind="isolate", target="controller-leader", direction="inbound", after_ready=1, duration=1)
    heal = cluster_faults.inject(fault, context)
    assert resolved == ["controller-leader"]
    assert sorted(proxies.toxics) == sorted(links_between({"kafka-2"}, "inbound"))
    assert all(len(names) == 2 for names in proxies.toxics.values())  # both streams blackholed
    heal()
    assert not any(proxies.toxics.values())


def test_cluster_faults_and_roles_are_checked_where_they_are_written():
    isolate = spec(3, "kafka-1", "isolate")
    assert parse_experiment(isolate, "exp.yaml").faults[0].direction == "both"
    assert any("fault of a three-broker cluster" in p for p in problems_of(spec(None, "kafka-1", "isolate")))
    assert any("whole cluster" in p for p in problems_of(spec(3, "kafka-0,kafka-1,kafka-2", "isolate")))
    apart = spec(3, "controller-1", "isolate").replace("    brokers: 3\n", "    brokers: 3\n    controllers: separate\n")
    assert parse_experiment(apart, "exp.yaml").environment.kafka.controllers == "separate"
    assert parse_experiment(apart.replace("controller-1", "kafka-0,kafka-1,kafka-2"), "exp.yaml")  # brokers | quorum
    assert any("controllers: separate" in p for p in problems_of(spec(3, "controller-1", "kill")))
    assert any("controllers: separate" in p for p in problems_of(spec(3, "controller-0->controller-1", "down")))
    assert any("set environment.kafka.brokers: 3" in p for p in problems_of(
        spec(None, "worker-0").replace("workload:", "environment:\n  kafka:\n    controllers: separate\nworkload:")))
    assert parse_experiment(spec(3, "cluster", "rolling_restart"), "exp.yaml").faults[0].hard is False
    assert parse_experiment(spec(3, "leader:input/1", "elect"), "exp.yaml").faults[0].election == "preferred"
    assert any("leader:input/<partition>" in p for p in problems_of(spec(3, "kafka-1", "elect")))
    unclean = spec(3, "leader:input", "elect").replace("    duration: 1s\n", "    election: unclean\n")
    assert any("expect.no_loss: false" in p for p in problems_of(unclean))
    opted_in = parse_experiment(unclean + "expect:\n  no_loss: false\n", "exp.yaml")
    assert opted_in.expected_loss == "an unclean leader election"
    assert any("sink must be Kafka" in p for p in problems_of(spec(3, "txn-coordinator")))
    to_kafka = spec(3, "txn-coordinator").replace("workload:", "pipeline:\n  source: kafka-transactional\n  sink: kafka-transactional\n  profile: distributed-durable\nworkload:")
    assert parse_experiment(to_kafka, "exp.yaml").faults[0].target == "txn-coordinator"


def test_min_insync_replicas_is_a_topic_setting_of_a_cluster_only():
    lenient = spec(3, "kafka-1").replace("    brokers: 3\n", "    brokers: 3\n    min_insync_replicas: 1\n")
    assert parse_experiment(lenient, "exp.yaml").environment.kafka.min_insync_replicas == 1
    one_broker = spec(None, "worker-0").replace("workload:", "environment:\n  kafka:\n    min_insync_replicas: 1\nworkload:")
    assert any("set environment.kafka.brokers: 3" in p for p in problems_of(one_broker))
    assert any("less than or equal to 3" in p for p in problems_of(lenient.replace("replicas: 1", "replicas: 4")))


def test_coordinators_are_placed_by_javas_string_hash():
    assert java_hash("hello") == 99162322
    assert java_hash("polygenelubricants") == -2**31  # Kafka's Utils.abs maps it to 0
    assert coordinator_partition("polygenelubricants", 50) == 0
    assert java_hash("é😀") == ((0xE9 * 31 + 0xD83D) * 31 + 0xDE00)  # UTF-16 code units, as Java counts
    assert coordinator_partition("hello", 5) == 99162322 % 5
    # A negative hash is Math.abs'ed, not masked: a real broker put this id on __transaction_state-0.
    assert java_hash("cluster-txn-coordinator-kill-20261201-134138-9bd9-sink-0") < 0
    assert coordinator_partition("cluster-txn-coordinator-kill-20261201-134138-9bd9-sink-0", 5) == 0


def test_an_unclean_elections_loss_of_acked_writes_is_reported_as_expected():
    outcomes = pa.table({"id": [0, 1, 2], "status": ["acked", "acked", "acked"]})
    truth = pa.table({"id": [0, 2]})
    assert check_source_acks(outcomes, truth).status == "fail"
    expected = check_source_acks(outcomes, truth, expected="an unclean leader election")
    assert expected.status == "info" and expected.counts["acked_missing"] == 1
    assert "expected loss, after an unclean leader election" in expected.summary
