"""Environment cold start and per-experiment reset: Environment.start (with and without PostgreSQL)
then stop, a three-node cluster's start (combined, and with its controllers apart) against one
broker's, and env.reset() after an experiment's worth of topics, proxies, toxics and groups.

Why: a private environment pays the cold start on every run, a shared one pays the reset instead;
these two figures say what sharing an environment (`chaos env up`) saves per experiment.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench.common import create_topics, environment, median, show, timed, write_results
from chaos.env import install as installer
from chaos.env.cluster import running_cluster
from chaos.env.environment import Environment
from chaos.env.kafka_clients import client_config
from faults.toxiproxy import Toxic


def cold_starts(with_postgres: bool, reps: int) -> list[dict[str, float]]:
    """Seconds to start an environment in a fresh directory, and to stop it (until every process is gone)."""
    runs = []
    for _ in range(reps):
        workdir = Path(tempfile.mkdtemp(prefix="chaos-bench-env-"))
        try:
            env, t_start = timed(lambda: Environment.start(workdir / "env", with_postgres=with_postgres))
            stopped, t_stop = timed(lambda: stop(env))
            if not stopped:
                raise RuntimeError(f"environment in {workdir} did not stop within 15s")
            runs.append({"start_s": t_start, "stop_s": t_stop})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return runs


def cluster_cold_starts(reps: int, nodes: int = 3, separate: bool = False) -> list[dict[str, float]]:
    """Seconds to start a cluster (combined nodes, or brokers and controllers apart) with its pair
    links and Toxiproxy, and to stop it."""
    runs = []
    for _ in range(reps):
        workdir = Path(tempfile.mkdtemp(prefix="chaos-bench-cluster-"))
        try:
            running = running_cluster(workdir, nodes, separate)
            _, t_start = timed(running.__enter__)
            _, t_stop = timed(lambda: running.__exit__(None, None, None))
            runs.append({"start_s": t_start, "stop_s": t_stop})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return runs


def stop(env: Environment) -> bool:
    env.stop()
    return env.wait_stopped()


def dirty(env: Environment, i: int, topics: int = 3, proxies: int = 2) -> None:
    """What an experiment leaves behind: topics, a consumer group, runtime links and a toxic."""
    names = [f"bench-{i}-{t}" for t in range(topics)]
    create_topics(env, names, 4)
    consumer = Consumer(client_config(env.bootstrap_direct, **{"group.id": f"bench-group-{i}"}))
    try:
        consumer.commit(offsets=[TopicPartition(names[0], 0, 0)], asynchronous=False)
    finally:
        consumer.close()
    for p in range(proxies):
        env.create_link(f"bench-link-{p}", env.state.kafka_direct)
    env.toxiproxy.add_toxic("worker-kafka", Toxic("bench-latency", "latency", attributes={"latency": 100}))


def resets(reps: int) -> tuple[list[float], int]:
    with environment() as env:
        times = []
        for i in range(reps):
            dirty(env, i)
            _, t = timed(env.reset)
            assert not env.toxiproxy.toxics("worker-kafka") and set(env.toxiproxy.proxies()) == set(
                env.state.kafka_links), "reset left proxies or toxics behind"
            times.append(t)
        return times, len(env.admin().list_topics(timeout=10).topics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--start-reps", type=int, default=3)
    parser.add_argument("--reset-reps", type=int, default=10)
    args = parser.parse_args()
    installs = [timed(installer.install)[1] for _ in range(3)]
    starts = {"kafka+toxiproxy": cold_starts(False, args.start_reps),
              "kafka+toxiproxy+postgres": cold_starts(True, args.start_reps),
              "3-node cluster+toxiproxy (12 pair links)": cluster_cold_starts(args.start_reps),
              "3 brokers+3 controllers+toxiproxy (21 pair links)": cluster_cold_starts(args.start_reps, separate=True)}
    reset_times, topics_left = resets(args.reset_reps)
    figures: dict[str, Any] = {
        "install_check_ms": round(median(installs) * 1000, 2),
        "cold_start": {name: {"start_s_median": round(median([r["start_s"] for r in runs]), 2),
                              "stop_s_median": round(median([r["stop_s"] for r in runs]), 2),
                              "start_s": [round(r["start_s"], 2) for r in runs]} for name, runs in starts.items()},
        "reset": {"median_s": round(median(reset_times), 3), "min_s": round(min(reset_times), 3),
                  "max_s": round(max(reset_times), 3), "reps": len(reset_times),
                  "per_reset": "3 topics x 4 partitions, 1 consumer group, 2 extra proxies, 1 toxic"},
    }
    rows: list[tuple[object, ...]] = [
        (f"cold start, {name}", f["start_s_median"], f"{min(f['start_s']):.2f} - {max(f['start_s']):.2f}",
         len(f["start_s"])) for name, f in figures["cold_start"].items()]
    rows += [(f"stop, {name}", f["stop_s_median"], "", len(f["start_s"])) for name, f in figures["cold_start"].items()]
    r = figures["reset"]
    rows.append(("reset (3 topics, 1 group, 2 proxies, 1 toxic)", r["median_s"], f"{r['min_s']:.2f} - {r['max_s']:.2f}",
                 r["reps"]))
    rows.append(("install check, already provisioned (ms)", figures["install_check_ms"], "", 3))
    show("Environment start, stop and reset (seconds)", ["", "median", "range", "reps"], rows,
         note=f"topics left after the last reset (internal ones): {topics_left}")
    write_results("environment", figures)


if __name__ == "__main__":
    main()
