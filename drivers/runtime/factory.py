"""Builds a worker's source and sink from the job configuration and the connector names."""

from __future__ import annotations

from pathlib import Path

from drivers.contracts import CrashHook, SinkDriver, SourceDriver
from drivers.diskfaults import DiskFaults
from drivers.runtime.config import JobConfig

TWO_PHASE_PARQUET_MUTANTS = {
    "non-idempotent-commit": "NonIdempotentCommitSink",
    "truncating-widen": "TruncatingWidenSink",
    "non-atomic-commit": "NonAtomicCommitSink",
    "drop-late": "DropLateSink",
}

DISK_CONTROL = "disk-faults.json"
"""The file in the run directory through which the harness injects disk faults into sink writes."""


def create_source(config: JobConfig, worker: int, crash: CrashHook) -> SourceDriver:
    s = config.source_settings
    if config.source in ("kafka", "kafka-transactional"):
        from drivers.kafka_source import KafkaSource

        return KafkaSource(s["bootstrap"], s["topic"], s["group_id"], int(s["partitions"]), crash,
                           transactional=config.source == "kafka-transactional", mutant=s.get("mutant"),
                           resume_from=s.get("resume_from", "checkpoint"),
                           with_split=config.allowed_lateness is not None)
    if config.source == "parquet-batch":
        from drivers.parquet_batch_source import ParquetBatchSource

        return ParquetBatchSource(Path(s["input_dir"]), crash)
    if config.source == "delta-batch":
        from drivers.delta import DeltaBatchSource

        return DeltaBatchSource(s["table"], crash)
    if config.source == "iceberg-batch":
        from drivers.iceberg import IcebergBatchSource

        return IcebergBatchSource(s["catalog_uri"], Path(s["warehouse"]), s["table_name"], crash)
    if config.source == "hudi-batch":
        from drivers.hudi import HudiBatchSource

        return HudiBatchSource(Path(s["table"]), crash)
    if config.source == "memory-stream":
        from drivers.memory import MemoryStreamSource

        return MemoryStreamSource(int(s["records"]), float(s["rate"]), int(s["keys"]), int(s["payload_size"]),
                                  int(s["seed"]), crash, started_at=float(s["started_at"]))
    raise ValueError(f"no source driver for {config.source!r}")


def create_sink(config: JobConfig, worker: int, crash: CrashHook, source: SourceDriver,
                late: bool = False) -> SinkDriver:
    """The worker's sink, or with `late` its late-event side output (same kind, its own location)."""
    s = config.sink_settings
    if late:  # the drop-late mutant lives in the side output; every other mutant in the main one
        s = {**s, "output_dir": s["late_output_dir"], "mutant": "drop-late" if s.get("mutant") == "drop-late" else None}
    elif s.get("mutant") == "drop-late":
        s = {**s, "mutant": None}
    disk = DiskFaults(Path(config.run_dir) / DISK_CONTROL)
    if config.sink == "parquet":
        from drivers.parquet_sinks import ParquetSink

        return ParquetSink(Path(s["output_dir"]), config.job_id, worker, crash, disk=disk)
    if config.sink == "parquet-2pc":
        from drivers.parquet_sinks import TwoPhaseParquetSink

        if s.get("mutant") in TWO_PHASE_PARQUET_MUTANTS:
            from drivers import mutants

            mutant = getattr(mutants, TWO_PHASE_PARQUET_MUTANTS[s["mutant"]])
            return mutant(Path(s["output_dir"]), config.job_id, worker, crash, disk=disk)
        return TwoPhaseParquetSink(Path(s["output_dir"]), config.job_id, worker, crash, disk=disk)
    if config.sink in ("delta-batch", "delta-2pc"):
        from drivers.delta import DeltaBatchSink, DeltaTwoPhaseSink

        delta = DeltaTwoPhaseSink if config.sink == "delta-2pc" else DeltaBatchSink
        return delta(s["table"], config.job_id, worker, crash)
    if config.sink in ("iceberg-batch", "iceberg-2pc"):
        from drivers.iceberg import IcebergBatchSink, IcebergTwoPhaseSink

        iceberg = IcebergTwoPhaseSink if config.sink == "iceberg-2pc" else IcebergBatchSink
        return iceberg(s["catalog_uri"], Path(s["warehouse"]), s["table_name"], config.job_id, worker, crash)
    if config.sink == "hudi-2pc":
        from drivers.hudi import HudiTwoPhaseSink

        return HudiTwoPhaseSink(Path(s["table"]), config.job_id, worker, crash)
    if config.sink == "vector":
        from drivers.vector import VectorSink

        return VectorSink(Path(s["db_path"]), s["table_name"], config.job_id, worker, crash)
    if config.sink == "memory":
        from drivers.memory import MemorySink

        return MemorySink(Path(s["output_dir"]) / f"memory-sink-w{worker}.parquet", crash, config.job_id, worker)
    if config.sink == "kafka-transactional":
        from drivers.kafka_sink import KafkaTransactionalSink

        return KafkaTransactionalSink(s["bootstrap"], s["topic"], config.job_id, worker, crash,
                                      source_topic=config.source_settings.get("topic", ""),
                                      consumer=getattr(source, "consumer", None))
    raise ValueError(f"no sink driver for {config.sink!r}")
