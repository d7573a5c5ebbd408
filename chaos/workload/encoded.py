"""The workload's records as Kafka keys and values, a batch at a time: byte for byte what
`generate` and `Record.encode` give, at a small fraction of their cost.

Why: building each record in Python and JSON-encoding it costs about 11 µs of CPU a record, which held
the workload producer to 55-90k records/s (docs/benchmarks.md, section 2). Here the seed's random stream is replayed with numpy (the
same Mersenne Twister: `random.Random`'s state handed to numpy's MT19937), each batch's payloads are
hex-encoded as one matrix, and its JSON is joined column by column with pyarrow. Only two steps stay
per record, both small: following the key draws (`randrange` rejects some draws, so where a record's
random words begin depends on the records before it) and each payload's CRC32.
`tests/unit/test_workload_encoded.py` holds every workload option to `Record.encode`.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drivers.sdk.records import EPOCH_MS, WorkloadShape, generate

BATCH_BYTES = 8 << 20
"""About this many payload bytes a batch: large enough to amortise numpy's and pyarrow's calls."""
MAX_ROWS = 65_536
HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
WORD_KEYS = 2**32
"""Keys drawn from one 32-bit word each (`randrange` below 2**32); more keys take the plain path."""


@dataclass(frozen=True)
class Batch:
    first: int
    """The id of the batch's first record; ids run on from it."""
    keys: list[bytes]
    values: list[bytes]


def encoded_batches(spec: WorkloadShape, seed: int, rows: int | None = None) -> Iterator[Batch]:
    """The whole workload, in order, in batches of up to `rows` records (a schema change starts a batch)."""
    rows = min(rows or MAX_ROWS, MAX_ROWS, max(1, BATCH_BYTES // spec.payload_size))
    if spec.keys >= WORD_KEYS:
        yield from _plain_batches(spec, seed, rows)
        return
    words, change, lo = _Words(seed), spec.schema_change_at, 0
    while lo < spec.records:
        hi = min(lo + rows, spec.records)
        hi = change if change is not None and lo < change < hi else hi
        yield _encode(spec, words, lo, hi)
        lo = hi


def _plain_batches(spec: WorkloadShape, seed: int, rows: int) -> Iterator[Batch]:
    records = generate(spec, seed)
    first = 0
    while chunk := list(islice(records, rows)):
        yield Batch(first, [r.key.encode() for r in chunk], [r.encode() for r in chunk])
        first += len(chunk)


class _Words:
    """The 32-bit words `random.Random(seed)` draws from, in order, read ahead into a buffer."""

    def __init__(self, seed: int):
        state = random.Random(seed).getstate()[1]
        self._twister = np.random.MT19937()
        self._twister.state = {"bit_generator": "MT19937",
                               "state": {"key": np.array(state[:-1], np.uint32), "pos": state[-1]}}
        self.buffer = np.empty(0, np.uint32)

    def ensure(self, count: int) -> np.ndarray:
        """At least `count` words ahead, without consuming them."""
        if len(self.buffer) < count:
            fresh = self._twister.random_raw(count - len(self.buffer)).astype(np.uint32)
            self.buffer = np.concatenate([self.buffer, fresh])
        return self.buffer

    def consume(self, count: int) -> None:
        self.buffer = self.buffer[count:]


def _walk(words: _Words, rows: int, payload_words: int, keys: int) -> np.ndarray:
    """Where each of the next `rows` records' words begin in `words.buffer`, and (a last entry) where
    the record after them begins.

    A record draws its payload first (`randbytes`: `payload_words` words), then its key: one word a
    draw, whose top `bits` bits are drawn again while they are not below `keys` (`randrange`)."""
    bits = keys.bit_length()
    ahead = rows * (payload_words + 2) + 64
    while True:
        buffer = words.ensure(ahead)
        accepted = ((buffer >> np.uint32(32 - bits)) < keys).tobytes()  # a byte a word, 1 where a key is taken
        starts = [0] * (rows + 1)
        start = 0
        try:
            for i in range(1, rows + 1):
                start = accepted.index(1, start + payload_words) + 1  # past the payload, the first key taken
                starts[i] = start
            return np.array(starts, np.int64)
        except ValueError:
            ahead *= 2  # rare: more rejected draws than the words read ahead


def _text(values: np.ndarray) -> pa.Array:
    return pa.array(values).cast(pa.string())


def _encode(spec: WorkloadShape, words: _Words, lo: int, hi: int) -> Batch:
    rows, size, half = hi - lo, spec.payload_size, (spec.payload_size + 1) // 2
    payload_words = -(-half // 4)
    starts = _walk(words, rows, payload_words, spec.keys)
    buffer = words.buffer
    drawn = buffer[starts[:-1, None] + np.arange(payload_words)]  # (rows, payload_words)
    if half % 4:  # `getrandbits` keeps the top bits of its last word
        drawn[:, -1] >>= np.uint32(32 - 8 * (half % 4))
    raw = drawn.astype("<u4").view(np.uint8)[:, :half]
    text = np.empty((rows, 2 * half), np.uint8)
    text[:, 0::2], text[:, 1::2] = HEX[raw >> 4], HEX[raw & 15]
    payloads = np.ascontiguousarray(text[:, :size]).tobytes()
    key = buffer[starts[1:] - 1] >> np.uint32(32 - spec.keys.bit_length())
    words.consume(int(starts[-1]))
    view = memoryview(payloads)
    checksums = [zlib.crc32(view[at:at + size]) for at in range(0, rows * size, size)]
    ids = np.arange(lo, hi, dtype=np.int64)
    event_time = EPOCH_MS + np.rint(ids * 1000 / spec.rate).astype(np.int64)
    if spec.late_every:
        event_time -= np.where(ids % spec.late_every == spec.late_every - 1, round(spec.lateness * 1000), 0)
    offsets = pa.py_buffer(np.arange(0, (rows + 1) * size, size, dtype=np.int32))
    keys = pc.binary_join_element_wise("k", _text(key), "")
    parts = ['{"id":', _text(ids), ',"key":"', keys, '","event_time":', _text(event_time),
             ',"payload":"', pa.Array.from_buffers(pa.string(), rows, [None, offsets, pa.py_buffer(payloads)]),
             '","checksum":', _text(np.array(checksums, np.int64)), *_evolving(spec, ids, lo), "}"]
    values = pc.binary_join_element_wise(*parts, "")
    return Batch(lo, keys.cast(pa.binary()).to_pylist(), values.cast(pa.binary()).to_pylist())


def _evolving(spec: WorkloadShape, ids: np.ndarray, lo: int) -> list[object]:
    """The JSON of `evolving_values` and `schema_version`, for a batch of one schema version."""
    if spec.schema_change_at is None:
        return []
    if lo < spec.schema_change_at:
        return [',"score":', _text(ids * 2654435761 % 2**31), ',"tag":"tag-', _text(ids % 13),
                '","schema_version":1']
    return [',"score":', _text(ids + 2**31), ',"region":"region-', _text(ids % 7), '","schema_version":2']
