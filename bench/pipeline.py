"""Pipeline throughput, Kafka to Parquet exactly once (kafka-transactional -> parquet-2pc,
distributed-durable) with no faults, against a raw confluent-kafka loop writing Parquet with pyarrow;
and the workload producer against a raw confluent-kafka produce loop.

Why: the checkpointing runtime (coordinator, workers, 2PC, PostgreSQL checkpoints) costs something
over the simplest loop that moves the same records; this measures how much, on the same broker and
the same records, in one run. Two ways: fed live by the harness's producer (what an experiment
sees), and on a topic filled before the job starts (`workload.prefill`), which measures the
runtime's own ceiling rather than the producer's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from rich.console import Console

from bench.common import create_topics, environment, median, show, write_results
from chaos.env.environment import Environment
from chaos.env.kafka_clients import client_config
from chaos.experiment.models import WorkloadSpec
from chaos.runner import run_file
from chaos.workload.encoded import encoded_batches
from chaos.workload.producer import POLL_EVERY, SETTINGS
from drivers.sdk.events import Event
from drivers.sdk.history import read_history
from drivers.sdk.records import SCHEMA

SEED = 1
Figures = dict[str, Any]


def experiment(records: int, rate: int, partitions: int, workers: int, prefill: bool = False) -> dict[str, object]:
    return {
        "name": "bench-pipeline-prefilled" if prefill else "bench-pipeline", "seed": SEED,
        "description": "bench.pipeline: throughput with no faults",
        "pipeline": {"source": "kafka-transactional", "sink": "parquet-2pc", "profile": "distributed-durable",
                     "checkpoint_interval": "1s", "workers": workers},
        "workload": {"records": records, "rate": rate, "partitions": partitions,
                     **({"prefill": True} if prefill else {})},
        "expect": {"drain_timeout": "180s"},
    }


def _run(env: Environment, workdir: Path, spec: dict[str, object]) -> tuple[Figures, dict[str, dict], list[dict]]:
    """One run through chaos.runner, attached to `env`: its status, wall time and history."""
    path = workdir / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    started = time.perf_counter()
    result = run_file(path, workdir / "runs", Path(env.state.workdir) / "state.json", private=False,
                      console=Console(quiet=True))
    wall = time.perf_counter() - started
    history = read_history(result.run_dir / "history.jsonl")
    events = {e["event"]: e for e in history if e["source"] == "harness"}
    summary = json.loads((result.run_dir / "result.json").read_text())
    failed = [v["invariant"] for v in summary.get("verdicts", []) if v["status"] == "fail"]
    figures = {"status": result.status, "run_wall_s": wall,
               "checkpoints": sum(1 for e in history if e["event"] == Event.CHECKPOINT_COMMITTED),
               "verdicts_failed": ", ".join(failed)}
    return figures, events, history


def pipeline_run(env: Environment, workdir: Path, spec: dict[str, object]) -> Figures:
    """Fed live: timed from the producer's start to the checkpoint that covers the topic."""
    figures, events, history = _run(env, workdir, spec)
    joined = max(e["ts"] for e in history if e["event"] == Event.COORDINATOR_WORKER_JOINED)
    return {**figures,
            "produce_to_drained_s": events[Event.RUN_DRAINED]["ts"] - events[Event.WORKLOAD_START]["ts"],
            "workload_s": events[Event.WORKLOAD_END]["seconds"],
            "drain_s": events[Event.RUN_DRAINED]["seconds"],
            "workers_joined_after_s": joined - events[Event.WORKLOAD_START]["ts"]}


def prefilled_run(env: Environment, workdir: Path, spec: dict[str, object]) -> Figures:
    """On a full topic: timed from the first pipeline process's start (and from the moment every
    process was ready) to the checkpoint that covers the topic. Its producer ran alone before."""
    figures, events, history = _run(env, workdir, spec)
    started = min(e["ts"] for e in history if e["event"] == Event.PROCESS_START)
    drained = events[Event.RUN_DRAINED]["ts"]
    return {**figures, "job_start_to_drained_s": drained - started,
            "ready_to_drained_s": drained - events[Event.PIPELINE_READY]["ts"],
            "producer_s": events[Event.WORKLOAD_END]["seconds"], "topic": events[Event.WORKLOAD_START]["topic"]}


def raw_consume(env: Environment, out: Path, topic: str, records: int, partitions: int,
                batch: int = 500, roll: int = 10_000) -> Figures:
    """One consumer that reads the whole topic from the beginning, decodes each record and writes a
    Parquet file every `roll` records; timed from `assign` to the last file."""
    out.mkdir()
    consumer = Consumer(client_config(env.bootstrap_direct, **{
        "group.id": f"bench-raw-{out.name}", "enable.auto.commit": False, "isolation.level": "read_committed"}))
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        start = time.perf_counter()
        pending: list[pa.Table] = []
        count = files = 0
        while count < records:
            if time.perf_counter() - start > 180:
                raise RuntimeError(f"raw loop: consumed {count} of {records} within 180s")
            rows = [json.loads(value) for m in consumer.consume(num_messages=batch, timeout=0.05)
                    if m.error() is None and (value := m.value()) is not None]
            if rows:
                pending.append(pa.Table.from_pylist(rows, schema=SCHEMA))
                count += len(rows)
            if sum(t.num_rows for t in pending) >= roll or (count >= records and pending):
                pq.write_table(pa.concat_tables(pending), out / f"part-{files:05d}.parquet")
                pending, files = [], files + 1
        seconds = time.perf_counter() - start
    finally:
        consumer.close()
    written = pq.read_table(out).num_rows
    return {"status": "pass" if written == records else f"wrote {written}", "seconds": seconds, "files": files}


def raw_produce(env: Environment, rep: int, records: int, rate: int, partitions: int) -> Figures:
    """A bare produce loop: the same records, encoded beforehand (untimed), through the same link with
    the workload producer's settings, and no delivery reports; timed from the first produce to the
    end of the flush."""
    topic = f"bench-raw-produce-{rep}"
    create_topics(env, [topic], partitions)
    spec = WorkloadSpec(records=records, rate=rate, partitions=partitions)
    pairs = [(k, v) for b in encoded_batches(spec, SEED) for k, v in zip(b.keys, b.values)]
    producer = Producer(client_config(env.bootstrap("workload-kafka"), **SETTINGS))
    start = time.perf_counter()
    for i, (key, value) in enumerate(pairs):
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        if i % POLL_EVERY == 0:
            producer.poll(0)
    left = producer.flush(60)
    seconds = time.perf_counter() - start
    return {"status": "pass" if left == 0 else f"{left} unflushed", "seconds": seconds}


def _rounded(runs: list[Figures]) -> list[Figures]:
    return [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--rate", type=int, default=100_000, help="the workload producer's rate, fed live")
    parser.add_argument("--prefill-rate", type=int, default=10_000_000,
                        help="its rate when it fills the topic first: far above what it reaches, so unlimited")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    n = args.records
    live_spec = experiment(n, args.rate, args.partitions, args.workers)
    prefill_spec = experiment(n, args.prefill_rate, args.partitions, args.workers, prefill=True)
    live: list[Figures] = []
    prefilled: list[Figures] = []
    raw: list[Figures] = []
    produce: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="chaos-bench-pipeline-") as tmp, environment(with_postgres=True) as env:
        for rep in range(args.reps):
            live.append(pipeline_run(env, Path(tmp), live_spec))
            prefilled.append(prefilled_run(env, Path(tmp), prefill_spec))
            # the same topic the prefilled job read, before the next run's reset deletes it
            raw.append(raw_consume(env, Path(tmp) / f"raw-{rep}", str(prefilled[-1]["topic"]), n, args.partitions))
            produce.append(raw_produce(env, rep, n, args.prefill_rate, args.partitions))
    p_s = median([float(r["produce_to_drained_s"]) for r in live])
    w_s = median([float(r["workload_s"]) for r in live])
    j_s = median([float(r["workers_joined_after_s"]) for r in live])
    d_s = median([float(r["drain_s"]) for r in live])
    f_s = median([float(r["job_start_to_drained_s"]) for r in prefilled])
    fr_s = median([float(r["ready_to_drained_s"]) for r in prefilled])
    pr_s = median([float(r["producer_s"]) for r in prefilled])
    r_s = median([float(r["seconds"]) for r in raw])
    rp_s = median([float(r["seconds"]) for r in produce])
    figures = {
        "records": n, "partitions": args.partitions, "reps": args.reps,
        "experiment": live_spec, "prefilled_experiment": prefill_spec,
        "pipeline": {"records_per_s": round(n / p_s), "produce_to_drained_s": round(p_s, 2),
                     "producer_records_per_s": round(n / w_s), "workers_joined_after_s": round(j_s, 2),
                     "drain_after_producer_s": round(d_s, 2), "runs": _rounded(live)},
        "prefilled": {"records_per_s": round(n / f_s), "job_start_to_drained_s": round(f_s, 2),
                      "ready_to_drained_records_per_s": round(n / fr_s), "ready_to_drained_s": round(fr_s, 2),
                      "runs": _rounded(prefilled)},
        "raw_loop": {"records_per_s": round(n / r_s), "seconds": round(r_s, 2), "topic": "the prefilled run's",
                     "runs": _rounded(raw)},
        "producer": {"records_per_s": round(n / pr_s), "seconds": round(pr_s, 2), "rate": args.prefill_rate},
        "raw_produce": {"records_per_s": round(n / rp_s), "seconds": round(rp_s, 2), "runs": _rounded(produce)},
        "ratio_raw_over_pipeline": round(p_s / r_s, 2),
        "ratio_raw_over_prefilled": round(f_s / r_s, 2),
        "ratio_producer_over_raw_produce": round(rp_s / pr_s, 2),
    }
    show(f"Kafka -> Parquet, {n:,} records, median of {args.reps}", ["side", "records/s", "seconds", "status"], [
        ("pipeline fed live: workload start -> drained", figures["pipeline"]["records_per_s"], p_s,
         ", ".join(str(r["status"]) for r in live)),
        (f"  its workload producer alone (rate {args.rate:,})", figures["pipeline"]["producer_records_per_s"], w_s, ""),
        ("  until every worker had joined", "", j_s, ""),
        ("  producer done -> drained", "", d_s, ""),
        ("pipeline on a prefilled topic: job start -> drained", figures["prefilled"]["records_per_s"], f_s,
         ", ".join(str(r["status"]) for r in prefilled)),
        ("  pipeline ready -> drained", figures["prefilled"]["ready_to_drained_records_per_s"], fr_s, ""),
        ("raw consumer -> pyarrow loop, the same topic", figures["raw_loop"]["records_per_s"], r_s,
         ", ".join(str(r["status"]) for r in raw)),
        ("raw / pipeline fed live", f"x{figures['ratio_raw_over_pipeline']}", "", ""),
        ("raw / pipeline on a prefilled topic", f"x{figures['ratio_raw_over_prefilled']}", "", ""),
        ("workload producer, unlimited (prefill)", figures["producer"]["records_per_s"], pr_s, ""),
        ("raw produce loop, no delivery reports", figures["raw_produce"]["records_per_s"], rp_s,
         ", ".join(str(r["status"]) for r in produce)),
        ("producer / raw produce loop", f"x{figures['ratio_producer_over_raw_produce']}", "", "")])
    write_results("pipeline", figures)


if __name__ == "__main__":
    main()
