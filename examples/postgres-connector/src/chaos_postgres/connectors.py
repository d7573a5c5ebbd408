"""The plug-in's connector kinds: what the entry points in pyproject.toml name.

This module is imported by every process of the testbed, so it imports the SDK and nothing else;
the drivers and the harness sides are named by import path and loaded where they run.
"""

from __future__ import annotations

from pathlib import Path

from drivers.sdk import SCHEMA_CHANGES, Capabilities, Connector, Maturity, Mutant

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"

POSTGRES_2PC = Connector(
    "postgres-2pc", "sink", "PostgreSQL (two-phase)",
    # Evolving columns live in a jsonb document, so every column change is data, not DDL.
    Capabilities(two_phase=True, idempotent_commit=True, networked=True, schema_changes=SCHEMA_CHANGES),
    Maturity.CERTIFIED, "chaos_postgres.sink:PostgresTwoPhaseSink", "chaos_postgres.harness:PostgresSinkSide",
    crash_points=("sink.prepare.before", "sink.prepare.after", "sink.commit.before", "sink.commit.after"),
    links=("worker-postgres",),
    mutants=(
        Mutant("rollback-all-on-recover",
               "recovery rolls back every prepared transaction of the worker, the restored checkpoint's too, "
               "and a commit that finds nothing prepared counts as done",
               "chaos_postgres.mutants:RollbackAllOnRecoverSink", "two-phase-commit",
               str(EXPERIMENTS / "rollback-all-on-recover.yaml"), "no-loss"),
    ),
)

POSTGRES_BATCH = Connector(
    "postgres-batch", "source", "PostgreSQL (batch)",
    Capabilities(replayable=True, idempotent_commit=True, networked=True, schema_changes=SCHEMA_CHANGES),
    Maturity.CERTIFIED, "chaos_postgres.source:PostgresBatchSource", "chaos_postgres.harness:PostgresSourceSide",
    crash_points=("source.poll.after", "source.ack.before"),
    links=("worker-postgres",),
)
