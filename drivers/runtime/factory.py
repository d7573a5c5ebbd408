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

DELTA_TWO_PHASE_MUTANTS = {
    "non-atomic-delta-commit": "NonAtomicDeltaSink",
}

KAFKA_SOURCE_MUTANTS = {
    "reconnect-skip": "ReconnectSkipKafkaSource",
}
"""Kafka source mutants that are classes of their own (`auto-commit` is a consumer setting of
`KafkaSource`)."""

DISK_CONTROL = "disk-faults.json"
"""The file in the run directory through which the harness injects disk faults into sink writes."""


def create_source(config: JobConfig, worker: int, crash: CrashHook) -> SourceDriver:
    s = config.source_settings
    if config.source in ("kafka", "kafka-transactional"):
        from drivers.kafka_source import KafkaSource

        kafka = KafkaSource
        if s.get("mutant") in KAFKA_SOURCE_MUTANTS:
            from drivers import mutants

            kafka = getattr(mutants, KAFKA_SOURCE_MUTANTS[s["mutant"]])
        return kafka(s["bootstrap"], s["topic"], s["group_id"], int(s["partitions"]), crash,
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
    """The worker's sink, or with `late` its late-event side output."""
    s = config.sink_settings
    disk = DiskFaults(Path(config.run_dir) / DISK_CONTROL)
    if late:
        return _late_sink(config, worker, crash, disk)
    if s.get("mutant") == "drop-late":  # that mutant lives in the side output
        s = {**s, "mutant": None}
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
        if config.sink == "delta-2pc" and s.get("mutant") in DELTA_TWO_PHASE_MUTANTS:
            from drivers import mutants

            delta = getattr(mutants, DELTA_TWO_PHASE_MUTANTS[s["mutant"]])
        return delta(s["table"], config.job_id, worker, crash, disk=disk)
    if config.sink in ("iceberg-batch", "iceberg-2pc"):
        from drivers.iceberg import IcebergBatchSink, IcebergTwoPhaseSink

        iceberg = IcebergTwoPhaseSink if config.sink == "iceberg-2pc" else IcebergBatchSink
        return iceberg(s["catalog_uri"], Path(s["warehouse"]), s["table_name"], config.job_id, worker, crash,
                       disk=disk)
    if config.sink == "hudi-2pc":
        from drivers.hudi import HudiTwoPhaseSink

        return HudiTwoPhaseSink(Path(s["table"]), config.job_id, worker, crash, disk=disk)
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


def _late_sink(config: JobConfig, worker: int, crash: CrashHook, disk: DiskFaults) -> SinkDriver:
    """The late-event side output is a Parquet directory whatever the main sink is (a dead-letter
    output that any reader can open): two-phase when the main sink is, so that a checkpoint's late
    records commit with its on-time ones, and plain otherwise."""
    from drivers.parquet_sinks import ParquetSink, TwoPhaseParquetSink
    from drivers.registry import SINKS

    output = Path(config.sink_settings["late_output_dir"])
    if config.sink_settings.get("mutant") == "drop-late":
        from drivers.mutants import DropLateSink

        return DropLateSink(output, config.job_id, worker, crash, disk=disk)
    if SINKS[config.sink].capabilities.two_phase:
        return TwoPhaseParquetSink(output, config.job_id, worker, crash, disk=disk)
    return ParquetSink(output, config.job_id, worker, crash, disk=disk)
