"""What the lakehouse tables' harness sides share: an input table written before the job, in parts.

Delta and Hudi tables are directories in the run (`lake/input-delta`, `lake/output-hudi`, ...);
Iceberg tables sit in a warehouse directory with a SQL catalog. Each format's module says how to
write the input and read a table; this base turns the workload into the parts it writes.
"""

from __future__ import annotations

import pyarrow as pa

from chaos.sides.parquet import ROW_GROUP, ParquetBatchSourceSide
from drivers.sdk import records

FILE_ROWS = ROW_GROUP * 5
"""Rows per input commit: small enough that each checkpoint has a few files to take."""


class TableSourceSide(ParquetBatchSourceSide):
    """A lakehouse table written before the job with the format's own writer, one commit per part,
    and read back the same way as the ground truth."""

    splits_key = "files"
    rows_per_unit = FILE_ROWS  # each part is one file of one row group

    def prepare(self) -> None:
        experiment = self.context.experiment
        parts = [table.slice(i, FILE_ROWS) for table in records.versioned_tables(experiment.workload, experiment.seed)
                 for i in range(0, table.num_rows, FILE_ROWS)]
        self.write_input(parts)

    def write_input(self, parts: list[pa.Table]) -> None:
        """Write `parts` as the input table, one commit each (parts may differ in schema version)."""
        raise NotImplementedError

    def read_input(self) -> pa.Table:
        raise NotImplementedError

    def truth(self) -> pa.Table:
        return self.read_input().select(["id", "key", "checksum"])
