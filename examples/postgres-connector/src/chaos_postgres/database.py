"""What the PostgreSQL sink and source share: the tables' layout, rows to and from Arrow, and a
connection that rides out a cut link.

Records keep the workload's fixed columns as columns and every other column in a `jsonb`
document, so a schema change mid-stream (a column dropped, widened or added) is data, not DDL:
no `ALTER TABLE` has to wait for another worker's prepared transaction to let go of the table.
"""

from __future__ import annotations

import json
from typing import Any, Callable, TypeVar

import psycopg
import pyarrow as pa
from psycopg import sql
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

FIXED = ("id", "key", "event_time", "payload", "checksum")
RETRY_FOR_S = 60.0
"""How long an operation keeps retrying a lost connection before the worker gives up (and fails
over): longer than the link outages a certification injects, shorter than the drain timeout."""
T = TypeVar("T")


def connect(dsn: str) -> psycopg.Connection:
    """An autocommit connection (transactions are begun and prepared explicitly), failing fast."""
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def with_retries(operation: Callable[[], T], on_failure: Callable[[Exception], None]) -> T:
    """`operation()`, run again on a lost connection (`on_failure` is told of each loss) for up to
    RETRY_FOR_S seconds. The operation must be safe to repeat from the start."""
    for attempt in Retrying(retry=retry_if_exception_type(psycopg.OperationalError),
                            wait=wait_exponential(multiplier=0.2, max=2), stop=stop_after_delay(RETRY_FOR_S),
                            reraise=True, before_sleep=lambda state: on_failure(state.outcome.exception())):
        with attempt:
            return operation()
    raise AssertionError("unreachable")


def create_output(conn: psycopg.Connection, table: str) -> None:
    conn.execute(sql.SQL("""
        CREATE TABLE IF NOT EXISTS {table} (
            id bigint NOT NULL, key text, event_time bigint, payload text, checksum bigint,
            doc jsonb NOT NULL DEFAULT '{{}}', job text NOT NULL, worker int NOT NULL, checkpoint_id bigint NOT NULL)
    """).format(table=sql.Identifier(table)))
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {marks} (gid text PRIMARY KEY)").format(
        marks=sql.Identifier(commits_table(table))))


def commits_table(table: str) -> str:
    """Where a prepared transaction leaves its gid, visible once (and only if) it is committed."""
    return f"{table}_commits"


def create_input(conn: psycopg.Connection, table: str) -> None:
    conn.execute(sql.SQL("""
        CREATE TABLE IF NOT EXISTS {table} (
            id bigint PRIMARY KEY, key text, event_time bigint, payload text, checksum bigint,
            schema_version int, doc jsonb NOT NULL DEFAULT '{{}}')
    """).format(table=sql.Identifier(table)))


def documents(records: pa.Table) -> list[str]:
    """Each record's columns beyond the fixed ones, as a JSON object (nulls left out)."""
    extra = [name for name in records.column_names if name not in FIXED]
    columns = {name: records.column(name).to_pylist() for name in extra}
    return [json.dumps({name: values[i] for name, values in columns.items() if values[i] is not None})
            for i in range(records.num_rows)]


def to_arrow(rows: list[tuple[Any, ...]], schema: pa.Schema | None = None) -> pa.Table:
    """Rows of (id, key, event_time, payload, checksum, doc) as a table: under `schema` when given,
    else with each document key as a column of the type its values have."""
    fixed = {name: [row[i] for row in rows] for i, name in enumerate(FIXED)}
    docs = [row[len(FIXED)] or {} for row in rows]
    names = list(schema.names) if schema is not None else sorted({k for doc in docs for k in doc})
    data = {**fixed, **{name: [doc.get(name) for doc in docs] for name in names if name not in FIXED}}
    if schema is not None:
        return pa.Table.from_pydict(data, schema=schema)
    base = pa.schema([("id", pa.int64()), ("key", pa.string()), ("event_time", pa.int64()),
                      ("payload", pa.string()), ("checksum", pa.int64())])
    table = pa.Table.from_pydict(fixed, schema=base)
    for name in names:
        table = table.append_column(name, pa.array(data[name]))
    return table
