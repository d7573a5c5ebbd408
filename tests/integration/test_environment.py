"""The environment itself: Kafka really sits behind Toxiproxy, and the shared environment is reusable."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from chaos.env.environment import Environment
from chaos.env.kafka_clients import client_config
from faults import network
from faults.catalog import LatencyFault, PartitionFault
from tests.integration.conftest import links_only

pytestmark = pytest.mark.integration


def _topic(env: Environment, partitions: int = 1) -> str:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    admin = env.admin()
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
    return name


def _produce_direct(env: Environment, topic: str, values: range) -> None:
    producer = Producer(client_config(env.bootstrap_direct))
    for i in values:
        producer.produce(topic, value=str(i).encode())
    assert producer.flush(30) == 0


def _drain(consumer: Consumer, seconds: float) -> list[int]:
    got: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got += [int(m.value()) for m in consumer.consume(100, timeout=0.2) if not m.error()]
    return got


def test_metadata_advertises_the_proxy_not_the_broker(environment):
    """A client that bootstraps through a link is told to keep using that link's proxy."""
    for link, ports in environment.state.kafka_links.items():
        consumer = Consumer(client_config(environment.bootstrap(link), **{"group.id": "meta"}))
        try:
            brokers = consumer.list_topics(timeout=10).brokers
        finally:
            consumer.close()
        assert [f"{b.host}:{b.port}" for b in brokers.values()] == [f"127.0.0.1:{ports.proxy}"]
        assert environment.link(link).upstream == f"127.0.0.1:{ports.broker}"


def test_partitioning_the_proxy_stalls_a_consumer(environment):
    """Metadata cannot route around the proxy: while the link is blackholed, nothing arrives."""
    topic = _topic(environment)
    _produce_direct(environment, topic, range(0, 100))
    consumer = Consumer(client_config(environment.bootstrap("worker-kafka"), **{
        "group.id": f"stall-{topic}", "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "socket.timeout.ms": 10000, "session.timeout.ms": 30000, "reconnect.backoff.max.ms": 500,
    }))
    consumer.subscribe([topic])
    try:
        first = _drain(consumer, 8)
        assert sorted(first) == list(range(100))
        fault = PartitionFault(kind="partition", target="worker-kafka", at=0, duration=4)
        heal = network.inject(fault, links_only(environment))
        try:
            _produce_direct(environment, topic, range(100, 200))
            during = _drain(consumer, 4)
        finally:
            heal()
        assert during == []
        after = _drain(consumer, 20)
        assert sorted(after) == list(range(100, 200))
    finally:
        consumer.close()


def test_reset_removes_toxics_extra_proxies_and_topics(environment):
    topic = _topic(environment)
    environment.toxiproxy.set_enabled("workload-kafka", False)
    environment.create_link("scratch", environment.state.kafka_direct)
    environment.reset()
    proxies = environment.toxiproxy.proxies()
    assert set(proxies) == set(environment.state.kafka_links)
    assert all(p.enabled for p in proxies.values())
    assert all(environment.toxiproxy.toxics(name) == [] for name in proxies)
    assert topic not in environment.admin().list_topics(timeout=10).topics


def test_latency_toxic_is_measurable_through_the_proxy(environment):
    """The proxied path really carries the toxic: a round trip through it slows down."""
    def round_trip() -> float:
        consumer = Consumer(client_config(environment.bootstrap("workload-kafka"), **{"group.id": "rtt"}))
        start = time.monotonic()
        consumer.list_topics(timeout=10)
        elapsed = time.monotonic() - start
        consumer.close()
        return elapsed

    baseline = min(round_trip() for _ in range(3))
    heal = network.inject(LatencyFault(kind="latency", target="workload-kafka", at=0, duration=1, latency_ms=300),
                          links_only(environment))
    try:
        slowed = min(round_trip() for _ in range(3))
    finally:
        heal()
    assert slowed >= baseline + 0.3
