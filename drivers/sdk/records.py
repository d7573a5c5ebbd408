"""Workload records: derived from the seed alone, so the same seed gives the same workload.

Every record carries a run-unique id (its sequence number), a key, an event time and a payload
with its CRC32 checksum, so that a checker can tell a corrupted or invented record from a real one.
"""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from dataclasses import dataclass
from typing import Iterator, Protocol

import pyarrow as pa


class WorkloadShape(Protocol):
    """What the generator needs of a workload: the experiment's `workload` section, or a `Workload`."""

    @property
    def records(self) -> int: ...
    @property
    def rate(self) -> float: ...
    @property
    def keys(self) -> int: ...
    @property
    def payload_size(self) -> int: ...
    @property
    def schema_change_at(self) -> int | None: ...
    @property
    def late_every(self) -> int | None: ...
    @property
    def lateness(self) -> float: ...


@dataclass(frozen=True)
class Workload:
    """A workload's shape without the experiment spec: what a driver that generates records is given."""

    records: int
    rate: float
    keys: int = 100
    payload_size: int = 64
    schema_change_at: int | None = None
    late_every: int | None = None
    lateness: float = 0.0


EPOCH_MS = 1_767_225_600_000
"""Event times start at 2026-01-01T00:00:00Z, whatever the wall clock says."""

SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("key", pa.string()),
    ("event_time", pa.int64()),
    ("payload", pa.string()),
    ("checksum", pa.int64()),
])


# A schema change mid-stream (workload.schema_change_at): version 1 records carry `score` as int32
# and a `tag`; from the change on, version 2 drops `tag`, widens `score` to int64 (with values only
# int64 can hold) and adds `region`. Values derive from the id, so the expected table knows them.
SCHEMA_V1 = SCHEMA.append(pa.field("score", pa.int32())).append(pa.field("tag", pa.string()))
SCHEMA_V2 = SCHEMA.append(pa.field("score", pa.int64())).append(pa.field("region", pa.string()))
EVOLVING = ("score", "tag", "region")


def schema_for(version: int | None) -> pa.Schema:
    return {None: SCHEMA, 1: SCHEMA_V1, 2: SCHEMA_V2}[version]


def evolving_values(record_id: int, version: int | None) -> dict[str, object]:
    if version == 1:
        return {"score": (record_id * 2654435761) % 2**31, "tag": f"tag-{record_id % 13}"}
    if version == 2:
        return {"score": 2**31 + record_id, "region": f"region-{record_id % 7}"}
    return {}


def checksum(payload: str) -> int:
    return zlib.crc32(payload.encode())


@dataclass(frozen=True)
class Record:
    id: int
    key: str
    event_time: int
    payload: str
    checksum: int
    version: int | None = None

    def fields(self) -> dict[str, object]:
        """The record's columns under its own schema version."""
        return {"id": self.id, "key": self.key, "event_time": self.event_time, "payload": self.payload,
                "checksum": self.checksum, **evolving_values(self.id, self.version)}

    def encode(self) -> bytes:
        body = self.fields()
        if self.version is not None:
            body["schema_version"] = self.version
        return json.dumps(body, separators=(",", ":")).encode()

    @staticmethod
    def decode(value: bytes) -> dict[str, object]:
        return json.loads(value)


def generate(spec: WorkloadShape, seed: int) -> Iterator[Record]:
    rng = random.Random(seed)
    half = (spec.payload_size + 1) // 2
    change = spec.schema_change_at
    lag_ms = round(spec.lateness * 1000)
    for i in range(spec.records):
        payload = rng.randbytes(half).hex()[: spec.payload_size]
        yield Record(
            id=i,
            key=f"k{rng.randrange(spec.keys)}",
            event_time=EPOCH_MS + round(i * 1000 / spec.rate)
            - (lag_ms if spec.late_every and i % spec.late_every == spec.late_every - 1 else 0),
            payload=payload,
            checksum=checksum(payload),
            version=None if change is None else (1 if i < change else 2),
        )


def expected_table(spec: WorkloadShape, seed: int) -> pa.Table:
    """The whole workload as a table under its final schema: what every checker compares against."""
    schema = SCHEMA if spec.schema_change_at is None else pa.unify_schemas(
        [SCHEMA_V1, SCHEMA_V2], promote_options="permissive")
    return pa.Table.from_pylist([r.fields() for r in generate(spec, seed)], schema=schema)


def versioned_tables(spec: WorkloadShape, seed: int) -> list[pa.Table]:
    """The workload split at the schema change, each part under its own schema version."""
    table = expected_table(spec, seed)
    change = spec.schema_change_at
    if change is None:
        return [table]
    return [table.slice(0, change).select(SCHEMA_V1.names).cast(SCHEMA_V1),
            table.slice(change).select(SCHEMA_V2.names).cast(SCHEMA_V2)]


def digest(spec: WorkloadShape, seed: int) -> str:
    """A fingerprint of the workload, recorded in result.json to show two runs produced the same."""
    h = hashlib.sha256()
    for record in generate(spec, seed):
        h.update(record.encode())
    return h.hexdigest()
