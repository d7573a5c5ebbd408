"""The Iceberg connectors' catalog, table and file helpers: a SqlCatalog on SQLite or PostgreSQL,
and the snapshot-summary properties that tag each commit."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

CATALOG_NAME = "chaos"
NAMESPACE = "chaos"

JOB_ID_PROP = "chaos.job-id"
WORKER_PROP = "chaos.worker"
MAX_COMMITTED_PROP = "chaos.max-committed-checkpoint-id"
CHECKPOINT_PROP = "chaos.checkpoint-id"
"""The checkpoint committed by this very snapshot (Flink keeps only the max; we also keep this one
so that a checkpoint skipped because a later one landed first is an error, not a silent loss)."""

PG_TIMEOUTS = {
    "connect_timeout": "5",        # a partitioned catalog link fails a connect in 5 s, not 2 min
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",   # unacknowledged sends on an established connection fail in 10 s
}
"""libpq connection parameters added to a PostgreSQL catalog URL. pyiceberg's SqlCatalog builds its
engine with `create_engine(uri, echo=…, pool_pre_ping=…)` only, so there is no way to pass
`connect_args`; SQLAlchemy hands the URL's query parameters to psycopg.connect instead."""

COMMIT_ATTEMPTS = 10


# -- catalog --------------------------------------------------------------------------------------
def catalog_url(catalog_uri: str | None, warehouse: Path) -> str:
    """The SQLAlchemy URL: `sqlite:///<warehouse>/catalog.db` for an empty/"sqlite" uri, a given
    sqlite URL as is, or a PostgreSQL URL with fail-fast timeouts added (those it lacks)."""
    if not catalog_uri or catalog_uri in ("sqlite", "embedded"):
        return f"sqlite:///{Path(warehouse).resolve() / 'catalog.db'}"
    url = make_url(catalog_uri)
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        extra = {k: v for k, v in PG_TIMEOUTS.items() if k not in url.query}
        url = url.update_query_dict(extra)
    return url.render_as_string(hide_password=False)


def _lost_init_race(e: BaseException) -> bool:
    if isinstance(e, (IntegrityError, ProgrammingError)):
        return True
    text = str(e).lower()
    return isinstance(e, OperationalError) and ("already exists" in text or "locked" in text)


def open_catalog(catalog_uri: str, warehouse: Path) -> Catalog:
    """A SqlCatalog named "chaos" with the namespace "chaos", warehouse `file://<warehouse>`."""
    warehouse = Path(warehouse).resolve()
    warehouse.mkdir(parents=True, exist_ok=True)
    uri = catalog_url(catalog_uri, warehouse)
    properties = {"uri": uri, "warehouse": warehouse.as_uri()}
    if not uri.startswith("sqlite"):
        properties["pool_pre_ping"] = "true"  # a connection from before a catalog restart is replaced
    # Workers that start together race to create the catalog's tables and the namespace on a new
    # database; the loser's "already exists" error goes away on a second try. A connection that
    # cannot be made (a partitioned link) is not retried here: it fails after connect_timeout.
    for attempt in Retrying(retry=retry_if_exception(_lost_init_race),
                            stop=stop_after_attempt(3), wait=wait_random_exponential(multiplier=0.05, max=0.5),
                            reraise=True):
        with attempt:
            catalog = SqlCatalog(CATALOG_NAME, **properties)
            catalog.create_namespace_if_not_exists(NAMESPACE)
    return catalog


def identifier(name: str) -> str:
    return name if "." in name else f"{NAMESPACE}.{name}"


def ensure_table(catalog: Catalog, name: str, schema: pa.Schema) -> Table:
    """Load the table, creating it from `schema` (nullable fields become optional) if missing."""
    ident = identifier(name)
    try:
        return catalog.load_table(ident)
    except NoSuchTableError:
        pass
    try:
        return catalog.create_table(ident, schema=schema)
    except TableAlreadyExistsError:  # another worker created it first
        return catalog.load_table(ident)


# -- files ----------------------------------------------------------------------------------------
def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a data-file location (`file://…`, a bare path, `s3://…`)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), unquote(parsed.path) if parsed.scheme else uri
    return pafs.FileSystem.from_uri(uri)


def is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file")


def local_path(uri: str) -> Path:
    return Path(filesystem(uri)[1])


def join_location(location: str, *parts: str) -> str:
    return "/".join([location.rstrip("/"), *parts])


def plain_types(schema: pa.Schema) -> pa.Schema:
    """pyiceberg reads strings as large_string; hand out the workload's plain types instead."""
    swap = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    return pa.schema([f.with_type(swap.get(f.type, f.type)) for f in schema])


def concat(tables: list[pa.Table]) -> pa.Table:
    """One table from a checkpoint's batches; schemas that changed mid-stream are unified."""
    return pa.concat_tables(tables, promote_options="permissive")
