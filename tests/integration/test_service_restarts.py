"""Killing and terminating the environment's services (Kafka, PostgreSQL), and restarting them on their data.

The first test runs `experiments/service-restarts.yaml` through `chaos run --env`: a harness that only
attached to the session's environment (started by this pytest process) restarts the services, so the
new processes must outlive it, be recorded in the state file, and leave the session environment healthy
for the tests after it. The second starts an environment of its own, has an attached harness kill and
restart both services after the owner did the same, checks that the data survived, and checks that the
owner's stop leaves no process behind, the attached harness's restarts included.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from chaos.env import postgres as pg
from chaos.env.environment import Environment
from chaos.env.kafka_clients import client_config
from chaos.env.processes import ProcessRef, process_start_time
from tests.integration.conftest import REPO
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[str]:
    """`pid: cmdline` of every running process whose command line mentions `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == 0:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and _running(int(entry.name)):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def _refs(pids) -> set[ProcessRef]:
    """Pids with their start times, so that a pid reused later is not mistaken for one of ours."""
    return {ProcessRef(pid, start) for pid in pids if (start := process_start_time(pid)) is not None}


def _pids(state_file: Path) -> dict[str, int]:
    return {name: p["pid"] for name, p in json.loads(state_file.read_text())["processes"].items()}


def test_killing_the_broker_and_terminating_the_store_lose_nothing(environment: Environment, run_experiment):
    state_file = Path(environment.state.workdir) / "state.json"
    before = _pids(state_file)
    started = time.monotonic()
    run = run_experiment(REPO / "experiments" / "service-restarts.yaml")
    elapsed = time.monotonic() - started
    assert run.code == 0, run.stdout + run.stderr
    assert run.verdict("no-loss")["counts"]["lost"] == 0
    assert run.verdict("duplicates")["status"] == "pass"
    assert run.verdict("duplicates")["counts"]["extra_copies"] == 0
    assert run.verdict("faults-applied")["status"] == "pass"
    events = run.history()
    injected = {e["target"]: e for e in events if e["event"] == "fault.inject"}
    healed = {e["target"]: e for e in events if e["event"] == "fault.heal"}
    assert set(injected) == set(healed) == {"kafka", "postgres"}
    assert (injected["kafka"]["kind"], injected["postgres"]["kind"]) == ("kill", "terminate")
    assert not [e for e in events if e["event"] in ("fault.error", "fault.skipped")]
    # The faults were apart, and each stayed down for its duration before the restart.
    assert healed["postgres"]["ts"] < injected["kafka"]["ts"]
    for target, duration in (("postgres", 2.0), ("kafka", 2.5)):
        assert healed[target]["ts"] - injected[target]["ts"] >= duration
    workload_end = next(e["ts"] for e in events if e["event"] == "workload.end")
    assert injected["postgres"]["ts"] < injected["kafka"]["ts"] < workload_end, "both must meet the workload"
    # The services were restarted as new processes, recorded in the state file the harness attached to...
    after = _pids(state_file)
    assert after["kafka"] != before["kafka"] and after["postgres"] != before["postgres"]
    assert after["toxiproxy"] == before["toxiproxy"]
    assert not _running(before["kafka"]) and not _running(before["postgres"])
    assert _running(after["kafka"]) and _running(after["postgres"]), "the restarts died with the harness"
    # ...and the session's environment is healthy for the tests after this one.
    assert Environment.load(state_file).health_problem() is None
    assert environment.health_problem() is None
    assert {n: p.pid for n, p in environment.state.processes.items()} == after
    print(f"service-restarts run: {elapsed:.1f}s, kafka down {healed['kafka']['ts'] - injected['kafka']['ts']:.1f}s, "
          f"postgres down {healed['postgres']['ts'] - injected['postgres']['ts']:.1f}s")


_ATTACHED_HARNESS = """
import json, sys, time
from pathlib import Path
from chaos.env.environment import Environment

env = Environment.attach(Path(sys.argv[1]))
timings = {}
for name in ("kafka", "postgres"):
    started = time.monotonic()
    env.stop_service(name, graceful=False)
    time.sleep(1)
    env.restart_service(name)
    timings[name] = round(time.monotonic() - started, 2)
print(json.dumps({"timings": timings, "health": env.health_problem()}))
"""


def _produce_transactions(bootstrap: str, topic: str, txn_id: str) -> None:
    producer = Producer(client_config(bootstrap, **{"transactional.id": txn_id}))
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(30):
        producer.produce(topic, key=str(i).encode(), value=f"committed-{i}".encode(), partition=i % 3)
    producer.commit_transaction(30)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=b"aborted", partition=0)
    producer.abort_transaction(30)


def _read_committed(bootstrap: str, topic: str) -> list[bytes]:
    """Every committed value, read until each partition's position reaches its high watermark, so
    that the aborted records and the transaction markers after them were passed, not waited out."""
    consumer = Consumer(client_config(bootstrap, **{"group.id": "reader", "isolation.level": "read_committed",
                                                    "enable.auto.commit": False}))
    try:
        partitions = [TopicPartition(topic, p, 0) for p in range(3)]
        consumer.assign(partitions)
        highs = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        values: list[bytes] = []

        def caught_up() -> bool:
            values.extend(m.value() for m in consumer.consume(100, timeout=0.5) if m.error() is None)
            return all(tp.offset >= highs[tp.partition] for tp in consumer.position(partitions))

        wait_for(caught_up, 30, f"the reader to reach the high watermarks {highs}", interval=0)
        return values
    finally:
        consumer.close()


def _committed_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer(client_config(bootstrap, **{"group.id": "keeper", "enable.auto.commit": False}))
    try:
        return {tp.partition: tp.offset for tp in
                consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)}
    finally:
        consumer.close()


def test_restarted_services_keep_their_data_and_the_owner_stops_them(tmp_path: Path):
    workdir = tmp_path / "env"
    owner = Environment.start(workdir, with_postgres=True)
    originals = {n: p.pid for n, p in owner.state.processes.items()}
    seen = _refs(originals.values()) | set(pg.children(originals["postgres"]))
    try:
        bootstrap, topic, admin = owner.bootstrap_direct, "kept", owner.admin()
        for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
            future.result(30)
        _produce_transactions(bootstrap, topic, "keeper-txn")
        committer = Consumer(client_config(bootstrap, **{"group.id": "keeper", "enable.auto.commit": False}))
        committer.commit(offsets=[TopicPartition(topic, p, 7 + p) for p in range(3)], asynchronous=False)
        committer.close()
        with psycopg.connect(owner.postgres_dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")

        # The owner itself terminates and restarts both (its restarts die with it, like the originals).
        for name in ("kafka", "postgres"):
            started = time.monotonic()
            owner.stop_service(name, graceful=True)
            owner.restart_service(name)
            print(f"owner: terminate and restart of {name} took {time.monotonic() - started:.1f}s")
        assert owner.health_problem() is None
        by_owner = {n: p.pid for n, p in owner.state.processes.items()}
        assert by_owner["kafka"] != originals["kafka"] and by_owner["postgres"] != originals["postgres"]
        assert _pids(workdir / "state.json") == by_owner
        seen |= _refs(by_owner.values()) | set(pg.children(by_owner["postgres"]))

        # Then a harness that only attached (another process) kills both and restarts them, detached.
        proc = subprocess.run([sys.executable, "-c", _ATTACHED_HARNESS, str(workdir / "state.json")], cwd=REPO,
                              capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["health"] is None
        print(f"attached harness: kill and restart took {report['timings']}")
        restarted = _pids(workdir / "state.json")
        assert restarted["kafka"] != by_owner["kafka"] and restarted["postgres"] != by_owner["postgres"]
        assert all(_running(pid) for pid in restarted.values()), "a restart died with the attached harness"
        seen |= _refs(restarted.values()) | set(pg.children(restarted["postgres"]))
        assert owner.health_problem() is None  # the owner sees the new pids through the state file
        assert {n: p.pid for n, p in owner.state.processes.items()} == restarted

        # Topics, committed offsets, committed and aborted transactions and the tables all survived.
        admin = owner.admin()
        assert len(admin.list_topics(timeout=10).topics[topic].partitions) == 3
        with pytest.raises(KafkaException, match="TOPIC_ALREADY_EXISTS"):
            for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
                future.result(30)
        assert _committed_offsets(bootstrap, topic) == {0: 7, 1: 8, 2: 9}
        values = _read_committed(bootstrap, topic)
        assert sorted(values) == sorted(f"committed-{i}".encode() for i in range(30))
        _produce_transactions(bootstrap, topic, "keeper-txn")  # the same transactional.id starts over cleanly
        with psycopg.connect(owner.postgres_dsn(), autocommit=True) as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]
        seen |= set(pg.children(restarted["postgres"]))
        # The owner's stop must find the attached harness's restarts through the state file.
    finally:
        owner.stop()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (_processes_mentioning(str(workdir)) or any(r.running() for r in seen)):
        time.sleep(0.2)
    assert _processes_mentioning(str(workdir)) == []
    assert [r for r in seen if r.running()] == []


def test_postgres_restarts_while_its_killed_postmaster_is_an_unreaped_zombie(tmp_path: Path):
    """The first attempt's failure: "lock file postmaster.pid already exists ... Is another postmaster
    (PID n) running", because kill(n, 0) succeeds for a zombie. Nothing here reaps the old postmaster."""
    from chaos.env.ports import PortLeases

    leases = PortLeases()
    (port,) = leases.reserve(str(tmp_path), 1)
    first = pg.start_postgres(tmp_path, tmp_path / "logs", port, detached=False)
    second = None
    try:
        with pg.connect(port) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (7)")
        pg.kill_server(first.ref)
        assert Path(f"/proc/{first.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        assert (tmp_path / "pg-data" / "postmaster.pid").read_text().split()[0] == str(first.pid)
        second = pg.start_postgres(tmp_path, tmp_path / "logs", port, detached=False)
        assert pg.health_problem(port) is None
        with pg.connect(port) as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(7,)]
    finally:
        if second is not None:
            second.stop()
        first.stop()
        leases.release(str(tmp_path))
    assert not _processes_mentioning(str(tmp_path / "pg-data"))
