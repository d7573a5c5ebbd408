"""The testbed's side of the PostgreSQL kinds: the tables they use, the input, and the output read
back with psycopg over PostgreSQL's direct port, never through the sink's code or its link.

Each run gets tables of its own (named after the run), in the environment's PostgreSQL, which
must allow prepared transactions (`max_prepared_transactions > 0`: the testbed's does).
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

import pyarrow as pa
from psycopg import sql

from chaos.errors import EnvironmentFailure
from chaos.sides.base import OutputWatch, RunContext, empty_output
from chaos.sides.visibility import unit_id, units_table
from chaos.workload.producer import WorkloadOutcome, WorkloadProgress
from chaos_postgres.database import FIXED, connect, create_input, create_output, documents, to_arrow
from drivers.sdk import Settings, records


def table_name(context: RunContext, role: str) -> str:
    """A table of this run's own: `chaos_<role>_<run>`, within PostgreSQL's 63-byte names."""
    digest = hashlib.sha1(context.run_id.encode()).hexdigest()[:8]
    return f"chaos_{role}_{re.sub(r'[^a-z0-9]+', '_', context.run_id.lower())[:36]}_{digest}"


def _direct(context: RunContext) -> str:
    """The harness's own connection: PostgreSQL's port, not the link the faults cut."""
    dsn = context.env.postgres_dsn()
    with connect(dsn) as conn:
        (prepared,) = conn.execute("SHOW max_prepared_transactions").fetchone()  # type: ignore[misc]
    if int(prepared) == 0:
        raise EnvironmentFailure("the environment's PostgreSQL does not allow prepared transactions "
                                 "(max_prepared_transactions = 0); restart it: chaos env down && chaos env up")
    return dsn


class PostgresSinkSide:
    watched = True
    polled = False

    def __init__(self, context: RunContext):
        self.context = context
        self.table = table_name(context, "out")
        self.dsn = _direct(context)

    def settings(self) -> Settings:
        with connect(self.dsn) as conn:
            create_output(conn, self.table)
        return {"dsn": self.context.env.postgres_dsn(via="worker-postgres"), "table": self.table}

    def _select(self, columns: str) -> list[tuple[Any, ...]]:
        with connect(self.dsn) as conn:
            return conn.execute(sql.SQL(f"SELECT {columns} FROM {{}}").format(sql.Identifier(self.table))).fetchall()

    def read(self) -> pa.Table:
        rows = self._select(", ".join([*FIXED, "doc"]))
        return to_arrow(rows) if rows else empty_output()

    def visible(self) -> pa.Array:
        return pa.array([id_ for (id_,) in self._select("id")], pa.int64())

    def units(self) -> pa.Table:
        """(unit, id) of every committed row: each worker's commit of a checkpoint is one unit."""
        by_unit: dict[int, list[int]] = {}
        for checkpoint, worker, id_ in self._select("checkpoint_id, worker, id"):
            by_unit.setdefault(unit_id(checkpoint, worker), []).append(id_)
        return units_table((u, pa.array(ids, pa.int64())) for u, ids in sorted(by_unit.items()))

    def watch(self) -> OutputWatch | None:
        return OutputWatch(self.visible, self.units)


class PostgresSourceSide:
    live_feed = False
    partitioned = False

    def __init__(self, context: RunContext):
        self.context = context
        self.table = table_name(context, "in")
        self.dsn = _direct(context)

    def prepare(self) -> None:
        experiment = self.context.experiment
        with connect(self.dsn) as conn:
            create_input(conn, self.table)
            with conn.cursor().copy(sql.SQL("COPY {} ({}, schema_version, doc) FROM STDIN").format(
                    sql.Identifier(self.table), sql.SQL(", ").join(map(sql.Identifier, FIXED)))) as copy:
                for version, part in enumerate(records.versioned_tables(experiment.workload, experiment.seed),
                                               start=1):
                    version_or_none = version if experiment.workload.schema_change_at is not None else None
                    fixed = [part.column(name).to_pylist() for name in FIXED]
                    for i, doc in enumerate(documents(part)):
                        copy.write_row([column[i] for column in fixed] + [version_or_none, doc])

    def settings(self) -> Settings:
        return {"dsn": self.context.env.postgres_dsn(via="worker-postgres"), "table": self.table,
                "records": self.context.experiment.workload.records}

    def drive(self, progress: WorkloadProgress, stop: threading.Event) -> WorkloadOutcome | None:
        progress.produced = progress.acked = self.context.experiment.workload.records
        return None

    def caught_up(self, status: dict[str, Any]) -> bool:
        return bool(status.get("exhausted"))

    def committed(self, status: dict[str, Any] | None) -> int:
        """Ids the last committed checkpoint covers, from each worker's next id per range."""
        total = self.context.experiment.workload.records
        if not status:
            return 0
        if status.get("exhausted"):
            return total
        return min(total, sum(int(n) - int(lo) for positions in status["positions"].values()
                              for lo, n in positions.get("next", {}).items()))

    def truth(self) -> pa.Table:
        with connect(self.dsn) as conn:
            rows = conn.execute(sql.SQL("SELECT id, key, checksum FROM {} ORDER BY id").format(
                sql.Identifier(self.table))).fetchall()
        return pa.table({"id": pa.array([r[0] for r in rows], pa.int64()),
                         "key": pa.array([r[1] for r in rows], pa.string()),
                         "checksum": pa.array([r[2] for r in rows], pa.int64())})

    def max_rate(self) -> float | None:
        """A table would be read in a blink; the workload's rate spreads it over checkpoints and faults."""
        return self.context.experiment.workload.rate / self.context.experiment.pipeline.workers

