"""The harness's side of each sink kind: what it needs set up, and how its output is read back.

Output is always read independently: Parquet files (plain, two-phase, and the in-memory sink's
dump at a graceful stop) with pyarrow, a Kafka topic with a read_committed consumer, and each
lakehouse table with its format's official reader (delta-rs, pyiceberg, hudi-rs). The two-phase
file and table sinks are also watched while the run goes on (`watch_output`), for atomic visibility.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
from confluent_kafka.admin import NewTopic

from chaos.env.environment import Environment
from chaos.lakehouse import read_table, table_format, table_settings
from chaos.readers import read_parquet_output, read_topic
from chaos.spec.models import Experiment
from chaos.table_snapshots import DeltaSnapshotIds, HudiSnapshotIds, IcebergSnapshotIds
from chaos.table_units import delta_committed_units, hudi_committed_units, iceberg_committed_units
from chaos.visibility_probe import ParquetVisibleIds, VisibleIds, committed_units


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


@dataclass(frozen=True)
class OutputWatch:
    """How one sink's output is observed during the run and judged after it."""

    visible: VisibleIds
    """What a reader sees now: the probe calls it every poll."""
    units: Callable[[], pa.Table]
    """After the run: (checkpoint_id, id) of every unit that had to become visible at once."""
    close: Callable[[], None] = field(default=lambda: None)


def watch_output(x: Experiment, env: Environment, run_dir: Path) -> OutputWatch | None:
    """The atomic-visibility watch of a two-phase sink whose commits a reader can poll, else None.

    The Iceberg catalog is reached over its direct address (`harness=True`), never the faulted link."""
    sink = x.pipeline.sink
    if sink == "parquet-2pc":
        output = run_dir / "output"
        return OutputWatch(ParquetVisibleIds(output), lambda: committed_units(output))
    if sink == "delta-2pc":
        uri = table_settings("delta", "output", x, env, run_dir, harness=True)["table"]
        return OutputWatch(DeltaSnapshotIds(uri), lambda: delta_committed_units(uri))
    if sink == "iceberg-2pc":
        s = table_settings("iceberg", "output", x, env, run_dir, harness=True)
        where = (s["catalog_uri"], Path(s["warehouse"]), s["table_name"])
        iceberg = IcebergSnapshotIds(*where)
        return OutputWatch(iceberg, lambda: iceberg_committed_units(*where), iceberg.close)
    if sink == "hudi-2pc":
        path = Path(table_settings("hudi", "output", x, env, run_dir, harness=True)["table"])
        return OutputWatch(HudiSnapshotIds(path), lambda: hudi_committed_units(path))
    return None
