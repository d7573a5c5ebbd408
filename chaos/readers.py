"""Independent readers of the source and the sink: never the pipeline's own code.

The topic is read back over the broker's direct listener (no proxy, no faults) with a
read_committed consumer, up to the high watermark of every partition; the Parquet output is read
with pyarrow, which skips hidden (`.`/`_`) staging files exactly as any reader would.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition

from chaos.errors import EnvironmentFailure
from chaos.kafka_clients import client_config
from chaos.workload.records import EVOLVING

if TYPE_CHECKING:
    from deltalake import DeltaTable

TRUTH_SCHEMA = pa.schema([
    ("id", pa.int64()), ("key", pa.string()), ("event_time", pa.int64()), ("payload", pa.string()),
    ("checksum", pa.int64()),
    ("partition", pa.int32()), ("offset", pa.int64()),
])


def read_topic(bootstrap: str, topic: str, timeout: float = 120.0) -> pa.Table:
    """Everything the topic holds: the ground truth of what the source really has."""
    consumer = Consumer(client_config(bootstrap, **{
        "group.id": f"chaos-truth-{time.time_ns()}", "enable.auto.commit": False,
        "isolation.level": "read_committed", "enable.partition.eof": True,
    }))
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = sorted(metadata.partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions if ends[p] > 0])
        pending = {p for p in partitions if ends[p] > 0}
        rows: dict[str, list[object]] = {name: [] for name in TRUTH_SCHEMA.names}
        evolving: dict[str, dict[int, object]] = {}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise EnvironmentFailure(f"reading topic {topic} back did not finish within {timeout:.0f}s")
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                p = msg.partition()
                if msg.error():
                    if msg.offset() >= ends.get(p, 0):
                        pending.discard(p)
                    continue
                if msg.offset() >= ends[p] - 1:
                    pending.discard(p)
                record = json.loads(msg.value())
                rows["id"].append(record["id"])
                rows["key"].append(record["key"])
                rows["event_time"].append(record["event_time"])
                rows["payload"].append(record["payload"])
                rows["checksum"].append(record["checksum"])
                rows["partition"].append(p)
                rows["offset"].append(msg.offset())
                for name in EVOLVING:
                    if name in record:
                        evolving.setdefault(name, {})[len(rows["id"]) - 1] = record[name]
        table = pa.table(rows, schema=TRUTH_SCHEMA)
        for name, values in sorted(evolving.items()):  # columns of a schema change, where records carry them
            table = table.append_column(name, pa.array([values.get(i) for i in range(table.num_rows)]))
        return table
    finally:
        consumer.close()


def read_parquet_output(directory: Path) -> pa.Table:
    """Every committed row of a Parquet output directory (empty if nothing was committed)."""
    files = sorted(p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        return _empty_output()
    # Files written before and after a schema change differ: read them all under the unified schema.
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    return ds.dataset([str(f) for f in files], schema=schema, format="parquet").to_table()


class OffsetProbe:
    """Reads a group's committed offsets and a topic's end offsets, over one long-lived client.

    It never joins the group: `committed()` only asks the group coordinator.
    """

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int):
        self._consumer = Consumer(client_config(bootstrap, **{"group.id": group, "enable.auto.commit": False}))
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]

    def committed(self) -> dict[int, int]:
        """The group's committed offset per partition (-1 where it has none yet)."""
        return {tp.partition: tp.offset for tp in self._consumer.committed(self._partitions, timeout=10)}

    def ends(self) -> dict[int, int]:
        return {tp.partition: self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._partitions}

    def close(self) -> None:
        self._consumer.close()


def table_digest(table: pa.Table) -> str:
    """A fingerprint of a table's rows, independent of their order: what two runs compare."""
    ordered = table.sort_by([(name, "ascending") for name in table.column_names]).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ordered.schema) as writer:
        writer.write_table(ordered, max_chunksize=1 << 30)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def _empty_output() -> pa.Table:
    return pa.table({"id": pa.array([], pa.int64()), "key": pa.array([], pa.string()),
                     "payload": pa.array([], pa.string()), "checksum": pa.array([], pa.int64())})


def read_delta(uri: str) -> pa.Table:
    """A Delta table through delta-rs."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(uri):
        return _empty_output()
    return delta_to_arrow(DeltaTable(uri), uri)


def delta_to_arrow(table: DeltaTable, uri: str, columns: list[str] | None = None) -> pa.Table:
    """A loaded `DeltaTable`'s version as Arrow. The explicit local filesystem avoids delta-rs #2184
    (the interpreter aborting at exit when pyarrow threads drive delta-rs's own filesystem)."""
    from pyarrow import fs as pafs

    return table.to_pyarrow_table(columns=columns, filesystem=pafs.SubTreeFileSystem(uri, pafs.LocalFileSystem()))


def read_iceberg(catalog_uri: str, warehouse: Path, table_name: str) -> pa.Table:
    """An Iceberg table's current snapshot through pyiceberg (the catalog must be named as written)."""
    from pyiceberg.exceptions import NoSuchTableError

    from drivers.iceberg import identifier, open_catalog

    catalog = open_catalog(catalog_uri, warehouse)
    try:
        return catalog.load_table(identifier(table_name)).scan().to_arrow()
    except NoSuchTableError:
        return _empty_output()


def read_hudi(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A Hudi table's latest snapshot through hudi-rs, without the `_hoodie_*` meta columns."""
    import hudi

    if not (path / ".hoodie" / "hoodie.properties").exists():
        return _empty_output()
    table = hudi.HudiTableBuilder.from_base_uri(str(path)).build()
    batches = table.read(hudi.HudiReadOptions(projection=columns)) if columns else table.read()
    if not batches:
        return _empty_output()
    table = pa.Table.from_batches(batches)
    return table.drop_columns([c for c in table.column_names if c.startswith("_hoodie_")])
