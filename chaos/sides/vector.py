"""The harness's side of the vector sink: a LanceDB table, read back with LanceDB's own reader."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from chaos.sides.base import OutputWatch, RunContext
from drivers.sdk.connector import Settings
from drivers.sdk.records import SCHEMA

TABLE = "output"


def read_vectors(db_path: Path, table_name: str) -> pa.Table:
    """The table's rows (workload columns plus `vector`), or an empty table with the workload's
    columns when the database or the table does not exist (`lancedb.connect` would create it: a
    reader must not)."""
    import lancedb

    if not Path(db_path).is_dir():
        return SCHEMA.empty_table()
    db = lancedb.connect(str(db_path))
    page = db.list_tables()
    names = list(page.tables)
    while page.page_token:  # the listing is paged
        page = db.list_tables(page_token=page.page_token)
        names += page.tables
    if table_name not in names:
        return SCHEMA.empty_table()
    return db.open_table(table_name).to_arrow()


class VectorSinkSide:
    watched = False
    polled = False

    def __init__(self, context: RunContext):
        self.db_path = context.lake / "vectors"

    def settings(self) -> Settings:
        return {"db_path": str(self.db_path), "table_name": TABLE}

    def read(self) -> pa.Table:
        return read_vectors(self.db_path, TABLE)

    def watch(self) -> OutputWatch | None:
        return None
