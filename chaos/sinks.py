"""The harness's side of each sink kind: what it needs set up, and how its output is read back.

Output is always read independently: Parquet files (plain, two-phase, and the in-memory sink's
dump at a graceful stop) with pyarrow, a Kafka topic with a read_committed consumer, and each
lakehouse table with its format's official reader (delta-rs, pyiceberg, hudi-rs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka.admin import NewTopic

from chaos.env.environment import Environment
from chaos.lakehouse import read_table, table_format, table_settings
from chaos.readers import read_parquet_output, read_topic
from chaos.spec.models import Experiment


def output_topic(run_dir: Path) -> str:
    return f"chaos-{run_dir.name}-output"


def prepare_sink(x: Experiment, env: Environment, run_dir: Path) -> dict[str, Any]:
    """Create what the sink writes to; returns the sink's settings for the job configuration.
    With late routing, the late-event side output is a Parquet directory whatever the sink."""
    settings = _main_sink_settings(x, env, run_dir)
    if x.pipeline.allowed_lateness is not None:
        settings["late_output_dir"] = str(run_dir / "late")
    return settings


def _main_sink_settings(x: Experiment, env: Environment, run_dir: Path) -> dict[str, Any]:
    kind = table_format(x.pipeline.sink)
    if kind:
        return {**table_settings(kind, "output", x, env, run_dir), "mutant": x.pipeline.mutant}
    if x.pipeline.sink == "vector":
        return {"db_path": str(run_dir / "lake" / "vectors"), "table_name": "output"}
    if x.pipeline.sink == "kafka-transactional":
        topic = output_topic(run_dir)
        admin = env.admin()
        new = NewTopic(topic, num_partitions=x.workload.partitions, replication_factor=1)
        admin.create_topics([new], operation_timeout=30)[topic].result(timeout=60)
        return {"bootstrap": env.bootstrap("worker-kafka"), "topic": topic, "mutant": x.pipeline.mutant}
    return {"output_dir": str(run_dir / "output"), "mutant": x.pipeline.mutant}


def read_output(x: Experiment, env: Environment, run_dir: Path) -> pa.Table:
    kind = table_format(x.pipeline.sink)
    if kind:
        return read_table(kind, table_settings(kind, "output", x, env, run_dir, harness=True))
    if x.pipeline.sink == "kafka-transactional":
        return read_topic(env.bootstrap_direct, output_topic(run_dir))
    if x.pipeline.sink == "vector":
        from drivers.vector import read_vectors

        return read_vectors(run_dir / "lake" / "vectors", "output")
    return read_parquet_output(run_dir / "output")
