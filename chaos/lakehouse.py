"""Where a run's lakehouse tables live, and how the harness writes inputs and reads outputs.

Delta and Hudi tables are directories in the run; Iceberg tables sit in a warehouse directory with
a SQL catalog: embedded SQLite, or, for the distributed-durable profile, the environment's
PostgreSQL. Workers reach that catalog through the `worker-catalog` link (so it can be
partitioned); the harness's own writes and reads use the direct port, never faulted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from chaos.env.environment import Environment
from chaos.readers import read_delta, read_hudi, read_iceberg
from chaos.spec.models import Experiment
from drivers.runtime.crashpoints import NoCrashes

FORMATS = ("delta", "iceberg", "hudi")


def table_format(connector: str) -> str | None:
    """`delta-2pc` -> `delta`; None for connectors that are not lakehouse tables."""
    kind = connector.split("-")[0]
    return kind if kind in FORMATS else None


def _iceberg_catalog(x: Experiment, env: Environment, harness: bool) -> str:
    if x.pipeline.profile != "distributed-durable":
        return ""  # embedded SQLite in the warehouse
    port = env.state.postgres if harness else env.create_link("worker-catalog", env.state.postgres).port
    return f"postgresql://chaos@127.0.0.1:{port}/chaos"


def table_settings(kind: str, role: str, x: Experiment, env: Environment, run_dir: Path,
                   harness: bool = False) -> dict[str, Any]:
    lake = run_dir / "lake"
    if kind == "iceberg":
        # The PostgreSQL catalog outlives the run, so each run's tables get names of their own.
        table = re.sub(r"[^a-z0-9]+", "_", f"{role}_{run_dir.name}".lower())
        return {"catalog_uri": _iceberg_catalog(x, env, harness), "warehouse": str(lake / "iceberg"),
                "table_name": table}
    return {"table": str(lake / f"{role}-{kind}")}


def write_table(kind: str, settings: dict[str, Any], parts: list[pa.Table]) -> None:
    """Write input data with the format's own writer, one commit per part (several files to split).
    Parts may carry different schema versions (a schema change in the input); only Iceberg takes them."""
    if kind == "delta":
        from deltalake import write_deltalake

        for part in parts:
            write_deltalake(settings["table"], part, mode="append")
    elif kind == "iceberg":
        from drivers.iceberg import ensure_table, open_catalog

        catalog = open_catalog(settings["catalog_uri"], Path(settings["warehouse"]))
        table = ensure_table(catalog, settings["table_name"], parts[0].schema)
        for part in parts:  # a part under a new schema version evolves the table in its own commit
            with table.transaction() as tx:
                tx.update_schema().union_by_name(part.schema).commit()
                tx.append(part)
    else:
        from drivers.hudi import HudiTwoPhaseSink

        writer = HudiTwoPhaseSink(Path(settings["table"]), "input", 0, NoCrashes())
        for checkpoint, part in enumerate(parts, start=1):
            writer.write(part)
            writer.commit(writer.prepare(checkpoint))


def read_table(kind: str, settings: dict[str, Any]) -> pa.Table:
    """The official reader of each format."""
    if kind == "delta":
        return read_delta(settings["table"])
    if kind == "iceberg":
        return read_iceberg(settings["catalog_uri"], Path(settings["warehouse"]), settings["table_name"])
    return read_hudi(Path(settings["table"]))
