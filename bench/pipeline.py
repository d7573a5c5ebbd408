"""Pipeline throughput, Kafka to Parquet exactly once (kafka-transactional -> parquet-2pc,
distributed-durable) with no faults, against a raw confluent-kafka loop writing Parquet with pyarrow.

Why: the checkpointing runtime (coordinator, workers, 2PC, PostgreSQL checkpoints, the harness's
producer running alongside) costs something over the simplest loop that moves the same records;
this measures how much, on the same broker and the same records, in one run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from rich.console import Console

from bench.common import create_topics, environment, median, show, write_results
from chaos.env.environment import Environment
from drivers.sdk.history import read_history
from chaos.env.kafka_clients import client_config
from chaos.runner import run_file
from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import SCHEMA, generate
from drivers.sdk.events import Event

SEED = 1


def experiment(records: int, rate: int, partitions: int, workers: int) -> dict[str, object]:
    return {
        "name": "bench-pipeline", "seed": SEED,
        "description": "bench.pipeline: throughput with no faults",
        "pipeline": {"source": "kafka-transactional", "sink": "parquet-2pc", "profile": "distributed-durable",
                     "checkpoint_interval": "1s", "workers": workers},
        "workload": {"records": records, "rate": rate, "partitions": partitions},
        "expect": {"drain_timeout": "180s"},
    }


def pipeline_run(env: Environment, workdir: Path, spec: dict[str, object]) -> dict[str, float | str]:
    """One run through chaos.runner, attached to `env`; timed from its history."""
    path = workdir / "bench-pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    started = time.perf_counter()
    result = run_file(path, workdir / "runs", Path(env.state.workdir) / "state.json", private=False,
                      console=Console(quiet=True))
    wall = time.perf_counter() - started
    history = read_history(result.run_dir / "history.jsonl")
    events = {e["event"]: e for e in history if e["source"] == "harness"}
    joined = max(e["ts"] for e in history if e["event"] == Event.COORDINATOR_WORKER_JOINED)
    summary = json.loads((result.run_dir / "result.json").read_text())
    return {"status": result.status,
            "produce_to_drained_s": events[Event.RUN_DRAINED]["ts"] - events[Event.WORKLOAD_START]["ts"],
            "workload_s": events[Event.WORKLOAD_END]["seconds"],
            "drain_s": events[Event.RUN_DRAINED]["seconds"],
            "workers_joined_after_s": joined - events[Event.WORKLOAD_START]["ts"],
            "run_wall_s": wall,
            "checkpoints": sum(1 for e in history if e["event"] == Event.CHECKPOINT_COMMITTED),
            "verdicts_failed": ", ".join(v["invariant"] for v in summary.get("verdicts", []) if v["status"] == "fail")}


def raw_run(env: Environment, workdir: Path, rep: int, records: int, rate: int, partitions: int,
            batch: int = 500, roll: int = 10_000) -> dict[str, float | str]:
    """Produce the workload's records to a fresh topic (untimed), then time one consumer that decodes
    them and writes a Parquet file every `roll` records."""
    topic = f"bench-raw-{rep}"
    create_topics(env, [topic], partitions)
    producer = Producer(client_config(env.bootstrap_direct, **{"acks": "all", "linger.ms": 5}))
    spec = WorkloadSpec.model_validate({"records": records, "rate": rate, "partitions": partitions})
    for record in generate(spec, SEED):  # the very records the pipeline's producer sends
        while True:
            try:
                producer.produce(topic, key=record.key.encode(), value=record.encode())
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60) != 0:
        raise RuntimeError("raw loop: the topic was not fully produced")
    out = workdir / f"raw-{rep}"
    out.mkdir()
    consumer = Consumer(client_config(env.bootstrap_direct, **{
        "group.id": f"bench-raw-{rep}", "enable.auto.commit": False, "isolation.level": "read_committed"}))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--rate", type=int, default=100_000, help="the workload producer's target rate")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    spec = experiment(args.records, args.rate, args.partitions, args.workers)
    pipeline: list[dict[str, float | str]] = []
    raw: list[dict[str, float | str]] = []
    with tempfile.TemporaryDirectory(prefix="chaos-bench-pipeline-") as tmp, environment(with_postgres=True) as env:
        for rep in range(args.reps):
            pipeline.append(pipeline_run(env, Path(tmp), spec))
            raw.append(raw_run(env, Path(tmp), rep, args.records, args.rate, args.partitions))
    p_s = median([float(r["produce_to_drained_s"]) for r in pipeline])
    w_s = median([float(r["workload_s"]) for r in pipeline])
    r_s = median([float(r["seconds"]) for r in raw])
    j_s = median([float(r["workers_joined_after_s"]) for r in pipeline])
    d_s = median([float(r["drain_s"]) for r in pipeline])
    figures = {
        "records": args.records, "partitions": args.partitions, "reps": args.reps, "experiment": spec,
        "pipeline": {"records_per_s": round(args.records / p_s), "produce_to_drained_s": round(p_s, 2),
                     "producer_records_per_s": round(args.records / w_s), "workers_joined_after_s": round(j_s, 2),
                     "drain_after_producer_s": round(d_s, 2),
                     "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in pipeline]},
        "raw_loop": {"records_per_s": round(args.records / r_s), "seconds": round(r_s, 2),
                     "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in raw]},
        "ratio_raw_over_pipeline": round(p_s / r_s, 2),
    }
    show(f"Kafka -> Parquet, {args.records:,} records, median of {args.reps}",
         ["side", "records/s", "seconds", "status"],
         [("pipeline: workload start -> drained", figures["pipeline"]["records_per_s"], p_s,
           ", ".join(str(r["status"]) for r in pipeline)),
          ("  its workload producer alone", figures["pipeline"]["producer_records_per_s"], w_s, ""),
          ("  until every worker had joined", "", j_s, ""),
          ("  producer done -> drained", "", d_s, ""),
          ("raw consumer -> pyarrow loop", figures["raw_loop"]["records_per_s"], r_s,
           ", ".join(str(r["status"]) for r in raw)),
          ("raw / pipeline", f"x{figures['ratio_raw_over_pipeline']}", "", "")])
    write_results("pipeline", figures)


if __name__ == "__main__":
    main()
