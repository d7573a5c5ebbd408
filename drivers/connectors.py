"""The connector table: every connector kind the testbed knows, each as one `Connector` object.

The guarantee matrix (`chaos/matrix.py`), the experiment's checks, the runtime's factory and the
runner all read this table, so a kind's guarantee follows from what it can do and nothing about a
kind is kept anywhere else. Maturity labels are declared here and earned in `chaos certify`, which
fails when a connector declared Certified falls short (docs/certification.md).

Adding a connector: a driver module in `drivers/`, a harness side in `chaos/sides/`, one entry here,
and the matrix rows it joins (`chaos/matrix.py`); docs/connectors.md walks through it. A kind from
another distribution registers as a plug-in (`drivers/plugins.py`) and is appended to the table.
"""

from __future__ import annotations

from drivers.plugins import BUILT_IN, Origin, PluginProblem, discover
from drivers.sdk.capabilities import SCHEMA_CHANGES, Capabilities, Maturity
from drivers.sdk.connector import Connector, Mutant

MUTANTS_DIR = "experiments/mutants"
INCIDENTS_DIR = "experiments/incidents"

SOURCE_POINTS = ("source.poll.after", "source.ack.before")
PREPARE_POINTS = ("sink.prepare.before", "sink.prepare.after")
COMMIT_POINTS = ("sink.commit.before", "sink.commit.after")

_RECONNECT_SKIP = Mutant(
    "reconnect-skip", "a reconnect that skips the records produced during the outage",
    "drivers.mutants:ReconnectSkipKafkaSource", "source-reconnect", f"{MUTANTS_DIR}/reconnect-skip.yaml", "no-loss",
    repeats=3)
_AUTO_COMMIT = Mutant(
    "auto-commit", "offsets committed before the sink has the batch",
    "drivers.mutants:AutoCommitKafkaSource", "ack-after-commit", f"{MUTANTS_DIR}/auto-commit-kill.yaml", "no-loss",
    repeats=3)
_KAFKA_SOURCE_MUTANTS = (_RECONNECT_SKIP, _AUTO_COMMIT)
_KAFKA_SOURCE_LINKS = ("workload-kafka", "worker-kafka")
_CATALOG_LINKS = ("worker-catalog",)

_KINDS = (
    # --- sources ---
    Connector("kafka", "source", "Kafka",
              Capabilities(replayable=True, event_time=True, networked=True, schema_changes=SCHEMA_CHANGES,
                           late_routing=True),
              Maturity.CERTIFIED, "drivers.kafka_source:KafkaSource", "chaos.sides.kafka:KafkaSourceSide",
              crash_points=SOURCE_POINTS, mutants=_KAFKA_SOURCE_MUTANTS, links=_KAFKA_SOURCE_LINKS),
    Connector("kafka-transactional", "source", "Kafka (transactional)",
              Capabilities(replayable=True, transactional=True, event_time=True, networked=True,
                           schema_changes=SCHEMA_CHANGES, late_routing=True),
              Maturity.CERTIFIED, "drivers.kafka_source:KafkaSource", "chaos.sides.kafka:KafkaSourceSide",
              crash_points=SOURCE_POINTS, mutants=_KAFKA_SOURCE_MUTANTS, links=_KAFKA_SOURCE_LINKS),
    Connector("parquet-batch", "source", "Parquet (batch)",
              Capabilities(replayable=True, idempotent_commit=True, schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.parquet_batch_source:ParquetBatchSource",
              "chaos.sides.parquet:ParquetBatchSourceSide",
              crash_points=SOURCE_POINTS),
    Connector("iceberg-batch", "source", "Iceberg (batch)",
              Capabilities(replayable=True, idempotent_commit=True, schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.iceberg.source:IcebergBatchSource", "chaos.sides.iceberg:IcebergSourceSide",
              crash_points=SOURCE_POINTS,
              links=_CATALOG_LINKS),
    Connector("delta-batch", "source", "Delta (batch, local)",
              Capabilities(replayable=True, idempotent_commit=True, schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.delta.source:DeltaBatchSource", "chaos.sides.delta:DeltaSourceSide",
              crash_points=SOURCE_POINTS),
    Connector("hudi-batch", "source", "Hudi (batch, local)",
              Capabilities(replayable=True, idempotent_commit=True, schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.hudi.source:HudiBatchSource", "chaos.sides.hudi:HudiSourceSide",
              crash_points=SOURCE_POINTS),
    Connector("memory-stream", "source", "In-memory stream",
              Capabilities(event_time=True, durable=False, schema_changes=SCHEMA_CHANGES, late_routing=True),
              Maturity.CERTIFIED, "drivers.memory:MemoryStreamSource", "chaos.sides.memory:MemorySourceSide",
              crash_points=SOURCE_POINTS),
    # --- sinks ---
    Connector("parquet", "sink", "Parquet", Capabilities(schema_changes=SCHEMA_CHANGES), Maturity.CERTIFIED,
              "drivers.parquet_sinks:ParquetSink", "chaos.sides.parquet:ParquetSinkSide",
              crash_points=(*PREPARE_POINTS, "sink.write.mid")),
    Connector("parquet-2pc", "sink", "Parquet (two-phase)",
              Capabilities(two_phase=True, idempotent_commit=True, schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.parquet_sinks:TwoPhaseParquetSink",
              "chaos.sides.parquet:TwoPhaseParquetSinkSide",
              crash_points=(*PREPARE_POINTS, *COMMIT_POINTS, "sink.write.mid", "sink.commit.mid"), mutants=(
                  Mutant("non-atomic-commit", "staged files visible before the commit",
                         "drivers.mutants:NonAtomicCommitSink", "sink-write-failure",
                         f"{MUTANTS_DIR}/non-atomic-commit.yaml", "atomic-visibility"),
                  Mutant("non-idempotent-commit", "a commit that is not idempotent on recovery",
                         "drivers.mutants:NonIdempotentCommitSink", "two-phase-commit",
                         f"{MUTANTS_DIR}/non-idempotent-commit.yaml", "duplicates"),
                  Mutant("expose-prepared", "prepared files published before the commit, deleted on rollback",
                         "drivers.mutants:ExposePreparedSink", "two-phase-commit",
                         f"{MUTANTS_DIR}/expose-prepared.yaml", "premature-read"),
                  Mutant("orphan-sweep", "a recovery that deletes its committed files as orphans",
                         "drivers.mutants:OrphanSweepSink", "two-phase-commit",
                         f"{MUTANTS_DIR}/orphan-sweep.yaml", "aborted-read"),
                  Mutant("skip-fsync", "an in-progress file closed without fsync",
                         "drivers.mutants:SkipFsyncSink", "sink-write-failure",
                         f"{MUTANTS_DIR}/skip-fsync.yaml", "readable-output"),
                  Mutant("lingering-rollback", "a rollback that shows the discarded files for a moment",
                         "drivers.mutants:LingeringRollbackSink", "two-phase-commit",
                         f"{MUTANTS_DIR}/lingering-rollback.yaml", "non-monotonic-read", repeats=3),
                  Mutant("truncating-widen", "schema widening that truncates values",
                         "drivers.mutants:TruncatingWidenSink", "schema-evolution",
                         f"{MUTANTS_DIR}/truncating-widen.yaml", "schema-compatibility"),
                  Mutant("drop-late", "late events dropped silently", "drivers.mutants:DropLateSink",
                         "late-events", f"{MUTANTS_DIR}/drop-late.yaml", "late-events", late_output=True),
              )),
    Connector("kafka-transactional", "sink", "Kafka (transactional)",
              Capabilities(transactional=True, two_phase=True, idempotent_commit=True, networked=True,
                           schema_changes=SCHEMA_CHANGES, key_order=True),
              Maturity.CERTIFIED, "drivers.kafka_sink:KafkaTransactionalSink", "chaos.sides.kafka:KafkaSinkSide",
              crash_points=(*PREPARE_POINTS, *COMMIT_POINTS, "sink.write.mid"), links=("sink-kafka",), mutants=(
                  Mutant("resend-on-recover", "a failover re-sends the restored checkpoint's records",
                         "drivers.mutants:ResendOnRecoverKafkaSink", "two-phase-commit",
                         f"{INCIDENTS_DIR}/kafka-resend-on-recovery.yaml", "duplicates"),
                  Mutant("fresh-transactional-id", "each incarnation takes a new transactional id: a crashed "
                         "one's open transaction hangs", "drivers.mutants:FreshIdKafkaSink", "two-phase-commit",
                         f"{MUTANTS_DIR}/fresh-transactional-id.yaml", "liveness"),
                  Mutant("early-commit", "commits its transaction in prepare, before the checkpoint is persisted",
                         "drivers.mutants:EarlyCommitKafkaSink", "two-phase-commit",
                         f"{MUTANTS_DIR}/early-commit.yaml", "premature-read", repeats=3),
              )),
    Connector("iceberg-batch", "sink", "Iceberg (batch)", Capabilities(schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.iceberg.sinks:IcebergBatchSink", "chaos.sides.iceberg:IcebergSinkSide",
              crash_points=PREPARE_POINTS,
              links=_CATALOG_LINKS),
    Connector("iceberg-2pc", "sink", "Iceberg (two-phase)",
              Capabilities(two_phase=True, idempotent_commit=True, schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.iceberg.sinks:IcebergTwoPhaseSink",
              "chaos.sides.iceberg:IcebergTwoPhaseSinkSide",
              crash_points=(*PREPARE_POINTS, *COMMIT_POINTS, "sink.write.mid"), links=_CATALOG_LINKS, mutants=(
                  Mutant("no-ancestry-check", "a commit made again without looking for it in the snapshot ancestry",
                         "drivers.mutants:NoAncestryCheckIcebergSink", "two-phase-commit",
                         f"{INCIDENTS_DIR}/iceberg-2808-lost-commit-response.yaml", "duplicates"),
              )),
    Connector("delta-batch", "sink", "Delta (batch)", Capabilities(schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.delta.batch_sink:DeltaBatchSink", "chaos.sides.delta:DeltaSinkSide",
              crash_points=PREPARE_POINTS),
    Connector("delta-2pc", "sink", "Delta (two-phase)",
              Capabilities(two_phase=True, idempotent_commit=True, schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.delta.sinks:DeltaTwoPhaseSink", "chaos.sides.delta:DeltaTwoPhaseSinkSide",
              crash_points=(*PREPARE_POINTS, *COMMIT_POINTS, "sink.write.mid", "sink.commit.mid"), mutants=(
                  Mutant("non-atomic-delta-commit",
                         "a Delta checkpoint committed in two table commits, half visible in between",
                         "drivers.mutants:NonAtomicDeltaSink", "sink-write-failure",
                         f"{MUTANTS_DIR}/non-atomic-delta-commit.yaml", "atomic-visibility", repeats=3),
                  Mutant("no-txn-check", "a re-commit appends rows whose app transaction is already in the log",
                         "drivers.mutants:NoTxnCheckDeltaSink", "two-phase-commit",
                         f"{INCIDENTS_DIR}/delta-rs-2580-duplicate-txn.yaml", "duplicates"),
              )),
    Connector("hudi-2pc", "sink", "Hudi (two-phase)",
              Capabilities(two_phase=True, idempotent_commit=True, schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.hudi.sink:HudiTwoPhaseSink", "chaos.sides.hudi:HudiTwoPhaseSinkSide",
              crash_points=(*PREPARE_POINTS, *COMMIT_POINTS, "sink.write.mid"), mutants=(
                  Mutant("rollback-on-recover", "recovery rolls back the restored checkpoint instead of committing it",
                         "drivers.mutants:RollbackOnRecoverHudiSink", "two-phase-commit",
                         f"{INCIDENTS_DIR}/hudi-18051-failure-after-checkpoint.yaml", "no-loss"),
              )),
    Connector("memory", "sink", "In-memory sink", Capabilities(durable=False, schema_changes=SCHEMA_CHANGES),
              Maturity.CERTIFIED, "drivers.memory:MemorySink", "chaos.sides.memory:MemorySinkSide",
              crash_points=(*PREPARE_POINTS, *COMMIT_POINTS)),
    Connector("vector", "sink", "Vector sink (lancedb)", Capabilities(durable=False), Maturity.EXPERIMENTAL,
              "drivers.vector:VectorSink", "chaos.sides.vector:VectorSinkSide",
              crash_points=PREPARE_POINTS),
)

_DISCOVERED = discover(_KINDS)
KINDS: tuple[Connector, ...] = (*_KINDS, *(kind for kind, _ in _DISCOVERED.kinds))
"""Every kind: the built-in ones, then each plug-in's (`drivers.plugins`)."""
ORIGINS: dict[tuple[str, str], Origin] = {
    **{(k.role, k.name): BUILT_IN for k in _KINDS}, **{(k.role, k.name): o for k, o in _DISCOVERED.kinds}}
"""(role, name) -> where the kind comes from."""
PLUGIN_PROBLEMS: tuple[PluginProblem, ...] = _DISCOVERED.problems
"""The plug-ins left out, each with the reason."""

SOURCES: dict[str, Connector] = {k.name: k for k in KINDS if k.role == "source"}
SINKS: dict[str, Connector] = {k.name: k for k in KINDS if k.role == "sink"}


def origin(kind: Connector) -> Origin:
    return ORIGINS[kind.role, kind.name]


def plugin_problem(name: str) -> PluginProblem | None:
    """Why the plug-in that would provide the kind `name` was left out, if it was."""
    return next((p for p in PLUGIN_PROBLEMS if p.entry == name), None)


def all_mutants(kinds: tuple[Connector, ...] | list[Connector] = KINDS) -> list[Mutant]:
    """Every seeded-bug variant of `kinds`, once each (the Kafka source mutants belong to both Kafka kinds)."""
    seen: dict[str, Mutant] = {}
    for kind in kinds:
        for mutant in kind.mutants:
            seen.setdefault(mutant.name, mutant)
    return list(seen.values())
