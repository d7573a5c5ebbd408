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
from typing import Iterator

import pyarrow as pa

from chaos.spec.models import WorkloadSpec

EPOCH_MS = 1_767_225_600_000
"""Event times start at 2026-01-01T00:00:00Z, whatever the wall clock says."""

SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("key", pa.string()),
    ("event_time", pa.int64()),
    ("payload", pa.string()),
    ("checksum", pa.int64()),
])


def checksum(payload: str) -> int:
    return zlib.crc32(payload.encode())


@dataclass(frozen=True)
class Record:
    id: int
    key: str
    event_time: int
    payload: str
    checksum: int

    def encode(self) -> bytes:
        return json.dumps(
            {"id": self.id, "key": self.key, "event_time": self.event_time,
             "payload": self.payload, "checksum": self.checksum},
            separators=(",", ":"),
        ).encode()

    @staticmethod
    def decode(value: bytes) -> dict[str, object]:
        return json.loads(value)


def generate(spec: WorkloadSpec, seed: int) -> Iterator[Record]:
    rng = random.Random(seed)
    half = (spec.payload_size + 1) // 2
    for i in range(spec.records):
        payload = rng.randbytes(half).hex()[: spec.payload_size]
        yield Record(
            id=i,
            key=f"k{rng.randrange(spec.keys)}",
            event_time=EPOCH_MS + round(i * 1000 / spec.rate),
            payload=payload,
            checksum=checksum(payload),
        )


def expected_table(spec: WorkloadSpec, seed: int) -> pa.Table:
    """The whole workload as a table: what every checker compares against."""
    columns: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
    for record in generate(spec, seed):
        for name in SCHEMA.names:
            columns[name].append(getattr(record, name))
    return pa.table(columns, schema=SCHEMA)


def digest(spec: WorkloadSpec, seed: int) -> str:
    """A fingerprint of the workload, recorded in result.json to show two runs produced the same."""
    h = hashlib.sha256()
    for record in generate(spec, seed):
        h.update(record.encode())
    return h.hexdigest()
