"""The harness's side of the in-memory stream and sink.

The stream generates the seeded workload inside the workers, so the seed's records are the truth.
The sink keeps its rows in memory and writes them to a Parquet file per worker at a graceful stop,
which pyarrow reads back like any Parquet output.
"""

from __future__ import annotations

import time

import pyarrow as pa

from chaos.sides.parquet import ParquetBatchSourceSide, ParquetSinkSide
from drivers.sdk import records
from drivers.sdk.connector import Settings


class MemorySourceSide(ParquetBatchSourceSide):
    rows_per_unit = 1  # positions: {"next": records handed out}
    def prepare(self) -> None:
        pass

    def settings(self) -> Settings:
        workload = self.context.experiment.workload
        return {"records": workload.records, "rate": workload.rate, "keys": workload.keys,
                "payload_size": workload.payload_size, "seed": self.context.experiment.seed,
                "started_at": time.time()}

    def truth(self) -> pa.Table:
        experiment = self.context.experiment
        return records.expected_table(experiment.workload, experiment.seed).select(["id", "key", "checksum"])

    def max_rate(self) -> float | None:
        return None  # the stream paces itself


class MemorySinkSide(ParquetSinkSide):
    """The sink's dumps are Parquet files in the output directory."""
