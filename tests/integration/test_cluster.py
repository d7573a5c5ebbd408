"""A three-node KRaft cluster whose nodes reach each other only through per-pair Toxiproxy links.

The module's cluster is a shared one, `chaos env up --brokers 3` under a CHAOS_HOME of its own, and
every experiment here attaches to it by default, as a user's runs would.

The proof that the wiring is real: cutting one direction between two named nodes cuts exactly that
direction. A follower fetches from its leader, so the link follower->leader carries a partition's
replication and leader->follower does not: cut the second and nothing changes; cut the first and
that follower falls out of the ISR while acks=all writes go on, replicated through the third node.
Then the experiments of `experiments/cluster/`: each role resolved to the node Kafka itself says
plays it, and each fault doing to the cluster what it says.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from chaos.certification.evidence import missing_evidence
from chaos.certification.plan import materialize, plan
from chaos.certification.scenarios import certification_rows, slug
from chaos.env import install as installer
from chaos.env.cluster import KafkaCluster
from chaos.env.cluster_config import REPLICA_LAG_MS
from chaos.env.environment import Environment
from chaos.env.roles import RoleNames
from drivers.sdk.events import Event
from drivers.sdk.history import read_history
from faults.targets import pair_link
from tests.integration.conftest import REPO, ChaosRun, chaos_cli, log_time
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TOPIC = "replicated"
LEADER, FOLLOWER, OTHER = 0, 1, 2
NODES = ("kafka-0", "kafka-1", "kafka-2")


@pytest.fixture(scope="module")
def cluster_home(tmp_path_factory) -> dict[str, str]:
    """`chaos env up --brokers 3` in a CHAOS_HOME of the module's own; `chaos env down` after."""
    tools = installer.install()
    home = dict(os.environ, CHAOS_HOME=str(tmp_path_factory.mktemp("cluster-home")),
                KAFKA_HOME=str(Path(tools.kafka_classpath.split(":")[0]).parent.parent),
                TOXIPROXY_BIN=str(tools.toxiproxy_server))
    try:
        up = chaos_cli("env", "up", "--brokers", "3", env=home, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        assert chaos_cli("env", "up", "--brokers", "3", env=home).stdout.startswith("already up")
        yield home
    finally:
        down = chaos_cli("env", "down", env=home, timeout=180)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def environment(cluster_home) -> Environment:
    return Environment.attach(Path(cluster_home["CHAOS_HOME"]) / "env" / "state.json")


@pytest.fixture(scope="module")
def cluster(environment) -> KafkaCluster:
    return environment.cluster()


@pytest.fixture
def run_on_cluster(cluster_home, tmp_path):
    """`chaos run FILE` with the module's CHAOS_HOME: it attaches to the shared cluster by itself."""
    def run(experiment: Path) -> ChaosRun:
        runs = tmp_path / "runs"
        proc = chaos_cli("run", str(experiment), "--runs-dir", str(runs), env=cluster_home)
        assert "attached to the environment" in proc.stdout, proc.stdout + proc.stderr
        dirs = sorted(runs.glob("*")) if runs.exists() else []
        return ChaosRun(proc.returncode, proc.stdout, proc.stderr, dirs[-1] if dirs else None)

    return run


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


def test_roles_resolve_to_the_nodes_that_kafka_itself_names(environment, cluster):
    """The group coordinator is the one the Admin API describes; the transaction coordinator is the
    node whose log initialized the transactional id; the active controller is a voter."""
    bootstrap = cluster.bootstrap_direct
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "role-group"})
    consumer.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
    consumer.close()
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "role-txn"})
    producer.init_transactions(30)
    roles = environment.roles(RoleNames(TOPIC, "role-group", "role-txn"))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups(["role-group"])["role-group"].result(timeout=10).coordinator.id
    assert roles.node_playing("group-coordinator") == f"kafka-{described}"
    node = roles.node_playing("txn-coordinator")
    log = (cluster.logs / node / "server.log").read_text()
    assert f"[TransactionCoordinator id={node[-1]}] Initialized transactionalId role-txn " in log
    assert roles.node_playing("controller-leader") in NODES
    assert roles.node_playing("leader:input") == f"kafka-{LEADER}"


# --- the experiments of experiments/cluster/, on the shared cluster ---

EXPERIMENTS = REPO / "experiments" / "cluster"


def log_during(run: ChaosRun, node: str) -> str:
    """The part of a node's server log written since the run started (the shared cluster's logs
    hold every run's); a line without a time stamp goes with the line before it."""
    started = next(e["ts"] for e in run.history() if e["event"] == Event.RUN_START)
    kept, keep = [], False
    for line in (run.run_dir / "logs" / f"{node}-server.log").read_text().splitlines():
        stamp = log_time(line)
        if stamp is not None:
            keep = stamp >= started
        if keep:
            kept.append(line)
    return "\n".join(kept)


def resolved(run: ChaosRun) -> list[tuple[str, str]]:
    """(role, node) of each role resolution, in the order of the timeline."""
    return [(e["role"], e["process"]) for e in run.history() if e["event"] == Event.FAULT_ROLE_RESOLVED]


def test_an_experiment_kills_the_inputs_leader_and_loses_nothing(run_on_cluster):
    """`leader:input` resolves, when the fault fires, to the node leading the input's partition 0;
    the timeline names it, and it is killed and started again on its data."""
    run = run_on_cluster(EXPERIMENTS / "leader-kill.yaml")
    assert run.code == 0, run.stdout + run.stderr
    ((role, node),) = resolved(run)
    assert role == "leader:input" and node in NODES
    history = run.history()
    faults = [e["event"] for e in history if e["event"] in (Event.FAULT_INJECT, Event.FAULT_HEAL)]
    assert faults == [Event.FAULT_INJECT, Event.FAULT_HEAL]
    assert run.verdict("source-lost-acked-writes")["status"] == "pass"
    assert run.verdict("no-loss")["counts"] == {"source_records": 6000, "lost": 0}
    # The node came back on its data: it started again during the run; the others did not.
    for name in NODES:
        assert log_during(run, name).count("Kafka Server started") == (1 if name == node else 0), name


def test_an_experiment_cuts_one_follower_off_its_leader_only(run_on_cluster):
    """`kafka-1->kafka-0` down: kafka-0 drops kafka-1 from the ISR of the partitions it leads (and
    only kafka-1); no other node loses a follower, and nothing is lost. (Taking kafka-1 back after
    the heal may come after the run has ended: the standalone test above waits for it.)"""
    run = run_on_cluster(EXPERIMENTS / "follower-cut-from-leader.yaml")
    assert run.code == 0, run.stdout + run.stderr
    shrunk = re.findall(r"Shrinking ISR from [0-2,]+ to ([0-2,]+)\.", log_during(run, "kafka-0"))
    assert shrunk and all(sorted(isr.split(",")) == ["0", "2"] for isr in shrunk), shrunk
    for other in ("kafka-1", "kafka-2"):  # no other node lost a follower
        assert "Shrinking ISR" not in log_during(run, other)
    assert run.verdict("no-loss")["status"] == "pass"


def test_killing_the_transaction_coordinator_keeps_kafka_to_kafka_exactly_once(run_on_cluster):
    """`txn-coordinator` resolves to the node that coordinates worker 0's transactional id, by its own
    log; it is killed while transactions are open, and exactly once holds."""
    run = run_on_cluster(EXPERIMENTS / "txn-coordinator-kill.yaml")
    assert run.code == 0, run.stdout + run.stderr
    ((role, node),) = resolved(run)
    initialized = f"[TransactionCoordinator id={node[-1]}] Initialized transactionalId {run.run_dir.name}-sink-0"
    assert role == "txn-coordinator" and initialized in log_during(run, node)
    assert log_during(run, node).count("Kafka Server started") == 1  # killed, and back on its data
    for invariant in ("no-loss", "duplicates", "prefix", "liveness", "drained"):
        assert run.verdict(invariant)["status"] == "pass", run.verdict(invariant)


def test_isolating_the_active_controller_moves_the_quorum_and_fences_it(run_on_cluster):
    """`isolate controller-leader`: the majority elects a controller among itself and fences the
    isolated node's broker; the pipeline loses nothing."""
    run = run_on_cluster(EXPERIMENTS / "controller-quorum-partition.yaml")
    assert run.code == 0, run.stdout + run.stderr
    ((role, isolated),) = resolved(run)
    assert role == "controller-leader"
    others = [node for node in NODES if node != isolated]
    assert any("Completed transition to Leader" in log_during(run, node) for node in others)
    fenced = rf"BrokerRegistrationChangeRecord\(brokerId={isolated.split('-')[1]}, brokerEpoch=\d+, fenced=1"
    assert any(re.search(fenced, log_during(run, node)) for node in others)
    for invariant in ("no-loss", "source-lost-acked-writes", "liveness"):
        assert run.verdict(invariant)["status"] == "pass", run.verdict(invariant)


def test_a_rolling_restart_during_the_exactly_once_row_restarts_every_node_once(run_on_cluster):
    run = run_on_cluster(EXPERIMENTS / "rolling-restart-eos.yaml")
    assert run.code == 0, run.stdout + run.stderr
    for node in NODES:
        assert log_during(run, node).count("Kafka Server started") == 1, node
    events = [e["event"] for e in run.history() if e["event"] in (Event.FAULT_INJECT, Event.FAULT_HEAL)]
    assert events == [Event.FAULT_INJECT, Event.FAULT_HEAL]
    for invariant in ("no-loss", "duplicates", "prefix", "per-key-order"):
        assert run.verdict(invariant)["status"] == "pass", run.verdict(invariant)


def test_a_preferred_election_hands_leadership_back_after_an_isolation(run_on_cluster):
    """Isolating the leader of the input's partition 0 moves it to a follower once the node is
    fenced; the preferred election moves it back: the timeline names the leader before the
    isolation, before the election and after it."""
    run = run_on_cluster(EXPERIMENTS / "leadership-transfer.yaml")
    assert run.code == 0, run.stdout + run.stderr
    (_, first), (_, before), (_, after) = resolved(run)
    assert before != first and after == first, resolved(run)
    assert run.verdict("no-loss")["status"] == "pass"
    assert run.verdict("source-lost-acked-writes")["status"] == "pass"


def test_a_kafka_rows_certification_case_passes_on_the_cluster(run_on_cluster, tmp_path):
    """The full suite's cluster variant of a Kafka row's case (here at the quick size): the same
    experiment with `environment.kafka.brokers: 3`, holding its invariants and showing its scenario."""
    row = next(r for r in certification_rows() if slug(r) == "kafka-to-parquet")
    case = next(c for c in plan([row], quick=False) if c.brokers == 3)
    run = run_on_cluster(materialize(case, True, tmp_path))
    assert run.code == 0, run.stdout + run.stderr
    assert missing_evidence(case.scenario, case.row, run.result, read_history(run.run_dir / "history.jsonl")) == []


def test_an_unclean_election_loses_acknowledged_writes_and_says_it_was_expected(run_on_cluster):
    """min.insync.replicas 1, the followers cut from fetching, the leader killed, an unclean election:
    writes the old leader alone acknowledged are gone, and counted as an expected loss."""
    run = run_on_cluster(EXPERIMENTS / "unclean-election.yaml")
    assert run.code == 0, run.stdout + run.stderr
    (_, isolated), (_, killed), (_, elected) = resolved(run)
    assert isolated == killed != elected
    acks = run.verdict("source-lost-acked-writes")
    assert acks["status"] == "info" and acks["counts"]["acked_missing"] > 0, acks
    assert "an expected loss, after an unclean leader election" in acks["summary"]
    assert run.verdict("no-loss")["status"] in ("pass", "info")  # not required here: never a failure


def test_the_controller_quorum_apart_moves_twice_and_the_brokers_follow(cluster_home, tmp_path):
    """Controllers in processes of their own: the shared cluster (combined) is not of that shape, so
    the run starts a private one. The isolated active controller is a `controller-<i>` process,
    replaced; the new one is killed and replaced again; the pipeline loses nothing."""
    runs = tmp_path / "runs"
    experiment = EXPERIMENTS / "controller-quorum-apart.yaml"
    proc = chaos_cli("run", str(experiment), "--runs-dir", str(runs), env=cluster_home)
    assert "the shared environment runs 3 brokers with combined controllers" in proc.stdout, proc.stdout
    run = ChaosRun(proc.returncode, proc.stdout, proc.stderr, sorted(runs.glob("*"))[-1])
    assert run.code == 0, run.stdout + run.stderr
    (_, isolated), (_, killed) = resolved(run)
    assert isolated.startswith("controller-") and killed.startswith("controller-") and isolated != killed
    assert "Completed transition to Leader" in log_during(run, killed)  # it had taken over the quorum
    assert log_during(run, killed).count("Kafka Server started") == 1  # and came back on its data
    for node in NODES:
        assert "Kafka Server started" not in log_during(run, node)  # the brokers stayed up throughout
    assert run.verdict("no-loss")["status"] == "pass"
    assert run.verdict("source-lost-acked-writes")["status"] == "pass"


def test_clock_faults_on_the_controller_leader_and_a_node_run_on_their_shims_and_lose_nothing(
        run_on_cluster, cluster_home):
    """The active controller's clock strobes ten minutes ahead, then kafka-2's drifts five behind and
    steps back. Every node runs with the clock shim on its own offset file (what the faults wrote),
    and the output keeps every record."""
    run = run_on_cluster(EXPERIMENTS / "clock-faults.yaml")
    assert run.code == 0, run.stdout + run.stderr
    (role, controller), = resolved(run)
    assert role == "controller-leader" and controller in NODES
    targets = [e["target"] for e in run.history() if e["event"] == Event.FAULT_INJECT]
    assert targets == ["controller-leader", "kafka-2"]
    state = Environment.attach(Path(cluster_home["CHAOS_HOME"]) / "env" / "state.json").state
    for node in NODES:
        environ = Path(f"/proc/{state.processes[node].pid}/environ").read_bytes().decode(errors="replace")
        variables = dict(item.split("=", 1) for item in environ.split("\0") if "=" in item)
        assert "libchaosclock" in variables["LD_PRELOAD"], node
        assert variables["CHAOS_CLOCK_FILE"].endswith(f"/clock/{node}.offset"), node
    assert run.verdict("faults-applied")["status"] == "pass"
    assert run.verdict("no-loss")["status"] == "pass"
    assert run.verdict("source-lost-acked-writes")["status"] == "pass"
