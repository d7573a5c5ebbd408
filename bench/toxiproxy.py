"""The cost of the Toxiproxy hop: Kafka produce and consume throughput, and round-trip latency,
through a link's proxy with no toxics against the broker's direct listener.

Why: every pipeline client talks to Kafka through Toxiproxy so that faults can reach it; this
measures what that costs when no fault is active, so that pipeline figures can be read with it in mind.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import threading
import time
from typing import Any, Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench.common import create_topics, environment, median, show, write_results
from chaos.env.environment import Environment
from chaos.env.kafka_clients import client_config

PARTITIONS = 3
KEYS = [f"k{i}".encode() for i in range(100)]


def produce(bootstrap: str, topic: str, values: list[bytes]) -> tuple[float, int]:
    """Seconds from the first produce to the end of the flush, and the broker port the client was sent to."""
    producer = Producer(client_config(bootstrap, **{"acks": "all", "enable.idempotence": True, "linger.ms": 5}))
    port = broker_port(producer)
    start = time.perf_counter()
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, value=value, key=KEYS[i % len(KEYS)])
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError(f"produce to {topic}: messages left unflushed after 60s")
    return time.perf_counter() - start, port


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 120.0) -> tuple[float, float, int, int]:
    """Read `expected` messages from the start of every partition. Returns the seconds to the first
    message, the seconds from there to the last, the bytes read (keys and values) and the broker port
    the client was sent to."""
    consumer = Consumer(client_config(bootstrap, **{
        "group.id": f"bench-{time.time_ns()}", "enable.auto.commit": False,
        # librdkafka pauses a partition's fetching for 1 s once its local queue is full; whether that
        # happens depends on how fast Python drains the queue, and it made runs bimodal (0.6 s or 1.6 s).
        "fetch.queue.backoff.ms": 10}))
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        count = size = 0
        start = time.perf_counter()
        first = 0.0
        while count < expected:
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"consumed {count} of {expected} from {topic} within {timeout:.0f}s")
            for msg in consumer.consume(num_messages=10000, timeout=1.0):
                if msg.error() is None:
                    if count == 0:
                        first = time.perf_counter() - start
                    count += 1
                    size += len(msg.value() or b"") + len(msg.key() or b"")
        return first, time.perf_counter() - start - first, size, broker_port(consumer)
    finally:
        consumer.close()


def broker_port(client: Producer | Consumer) -> int:
    """The port metadata advertises for the broker: the proxy's for a link, the direct listener otherwise."""
    brokers = client.list_topics(timeout=10).brokers
    return next(iter(brokers.values())).port


def echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def tcp_rtts(port: int, n: int = 2000, size: int = 64) -> list[float]:
    """Round trips of `size` bytes over one connection, in microseconds."""
    payload = os.urandom(size)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rtts = []
        for _ in range(n):
            start = time.perf_counter()
            sock.sendall(payload)
            got = 0
            while got < size:
                got += len(sock.recv(size - got))
            rtts.append((time.perf_counter() - start) * 1e6)
    return rtts


def metadata_rtts(bootstrap: str, topic: str, n: int = 200) -> list[float]:
    """Kafka metadata requests for one topic over a warm client, in microseconds."""
    consumer = Consumer(client_config(bootstrap, **{"group.id": "bench-metadata"}))
    try:
        consumer.list_topics(topic, timeout=10)
        rtts = []
        for _ in range(n):
            start = time.perf_counter()
            consumer.list_topics(topic, timeout=10)
            rtts.append((time.perf_counter() - start) * 1e6)
        return rtts
    finally:
        consumer.close()


def throughput(env: Environment, values: list[bytes], reps: int) -> dict[str, list[dict[str, float]]]:
    """Produce then consume `values` on each path, `reps` times, alternating which path goes first."""
    paths = {"direct": (env.bootstrap_direct, env.bootstrap_direct),
             "toxiproxy": (env.bootstrap("workload-kafka"), env.bootstrap("worker-kafka"))}
    allowed = {"direct": {env.state.kafka_direct},
               "toxiproxy": {env.state.kafka_links[link].proxy for link in ("workload-kafka", "worker-kafka")}}
    for name, (produce_via, consume_via) in paths.items():  # warm up: producer ids, connections, page cache
        create_topics(env, [f"bench-warmup-{name}"], PARTITIONS)
        produce(produce_via, f"bench-warmup-{name}", values[:20_000])
        consume(consume_via, f"bench-warmup-{name}", min(20_000, len(values)))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    for rep in range(reps):
        for name in (list(paths) if rep % 2 == 0 else list(reversed(paths))):
            produce_via, consume_via = paths[name]
            topic = f"bench-{name}-{rep}"
            create_topics(env, [topic], PARTITIONS)
            t_produce, produce_port = produce(produce_via, topic, values)
            t_first, t_consume, size, consume_port = consume(consume_via, topic, len(values))
            assert {produce_port, consume_port} <= allowed[name], f"{name}: metadata sent clients elsewhere"
            runs[name].append({"produce_s": t_produce, "first_message_s": t_first, "consume_s": t_consume,
                               "bytes": size})
    return runs


def latencies(env: Environment) -> dict[str, dict[str, dict[str, float]]]:
    """p50 and p99 round trips: a TCP echo server behind a proxy of its own, and Kafka metadata requests."""
    server, port = echo_server()
    try:
        proxy = env.create_link("bench-echo", port)
        create_topics(env, ["bench-metadata"], PARTITIONS)
        probes: dict[str, tuple[Callable[[], list[float]], Callable[[], list[float]]]] = {
            "TCP echo, 64 B": (lambda: tcp_rtts(port), lambda: tcp_rtts(proxy.port)),
            "Kafka metadata": (lambda: metadata_rtts(env.bootstrap_direct, "bench-metadata"),
                               lambda: metadata_rtts(env.bootstrap("worker-kafka"), "bench-metadata")),
        }
        return {probe: {side: {"p50": round(median(v), 1), "p99": round(statistics.quantiles(v, n=100)[98], 1)}
                        for side, v in (("direct", direct()), ("proxied", proxied()))}
                for probe, (direct, proxied) in probes.items()}
    finally:
        server.close()


def summarise(runs: list[dict[str, float]], records: int) -> dict[str, Any]:
    """Median and best (fastest) repetition; consume rates count from the first message on."""
    size = runs[0]["bytes"]

    def at(pick: Callable[[list[float]], float]) -> dict[str, float]:
        produce_s, consume_s = pick([r["produce_s"] for r in runs]), pick([r["consume_s"] for r in runs])
        return {"produce_msgs_per_s": round(records / produce_s), "produce_mb_per_s": round(size / produce_s / 1e6, 1),
                "consume_msgs_per_s": round(records / consume_s), "consume_mb_per_s": round(size / consume_s / 1e6, 1),
                "first_message_s": round(pick([r["first_message_s"] for r in runs]), 3)}

    return {"median": at(median), "best": at(min),
            "runs": [{k: round(v, 3) for k, v in r.items() if k != "bytes"} for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    values = [os.urandom(args.value_bytes) for _ in range(args.records)]
    with environment() as env:
        runs = throughput(env, values, args.reps)
        latency = latencies(env)
        version = env.toxiproxy.version()  # "git" for a `go install` build: see machine.toxiproxy
    figures = {name: summarise(r, args.records) for name, r in runs.items()}
    columns = ("produce_msgs_per_s", "produce_mb_per_s", "consume_msgs_per_s", "consume_mb_per_s", "first_message_s")
    ratio, rows = {}, []
    for label in ("median", "best"):
        direct, proxied = figures["direct"][label], figures["toxiproxy"][label]
        ratio[label] = {k: round(proxied[k] / direct[k], 3) for k in ("produce_msgs_per_s", "consume_msgs_per_s")}
        rows += [(f"direct, {label}", *(direct[k] for k in columns)),
                 (f"toxiproxy, {label}", *(proxied[k] for k in columns)),
                 (f"proxied / direct, {label}", f"x{ratio[label]['produce_msgs_per_s']}", "",
                  f"x{ratio[label]['consume_msgs_per_s']}", "", "")]
    show(f"Kafka through Toxiproxy: {args.records:,} records of {args.value_bytes} B, {args.reps} reps",
         ["path", "produce msg/s", "produce MB/s", "consume msg/s", "consume MB/s", "1st msg s"], rows,
         note="consume rates count from the first message; '1st msg' is assign -> first message")
    show("Round-trip latency (microseconds)", ["probe", "direct p50", "direct p99", "proxied p50", "proxied p99"],
         [(probe, *(v for side in sides.values() for v in side.values())) for probe, sides in latency.items()])
    write_results("toxiproxy", {"records": args.records, "value_bytes": args.value_bytes, "reps": args.reps,
                                "partitions": PARTITIONS, "toxiproxy_api_version": version,
                                "throughput": figures, "ratio_proxied_over_direct": ratio, "latency_us": latency})


if __name__ == "__main__":
    main()
