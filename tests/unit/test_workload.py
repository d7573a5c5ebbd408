"""The seeded workload: deterministic, well-formed records, and their wire encoding."""

from __future__ import annotations

import hashlib
import zlib

import pyarrow as pa
import pytest

from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import SCHEMA, Record, digest, expected_table, generate, versioned_tables

SPEC = WorkloadSpec(records=300, rate=70, keys=7, payload_size=33)


def records(spec: WorkloadSpec = SPEC, seed: int = 11) -> list[Record]:
    return list(generate(spec, seed))


def test_same_seed_same_records_and_digest():
    assert records(seed=11) == records(seed=11)
    assert digest(SPEC, 11) == digest(SPEC, 11)


def test_different_seed_different_records_and_digest():
    assert [r.payload for r in records(seed=11)] != [r.payload for r in records(seed=12)]
    assert digest(SPEC, 11) != digest(SPEC, 12)


def test_digest_depends_on_the_spec():
    assert digest(SPEC, 11) != digest(SPEC.model_copy(update={"records": 299}), 11)
    assert digest(SPEC, 11) != digest(SPEC.model_copy(update={"payload_size": 32}), 11)


def test_digest_is_the_sha256_of_the_encoded_records_in_order():
    """The fingerprint covers every record's bytes, in order: reordering or dropping one changes it."""
    encoded = [r.encode() for r in records(seed=11)]
    assert digest(SPEC, 11) == hashlib.sha256(b"".join(encoded)).hexdigest()
    assert digest(SPEC, 11) != hashlib.sha256(b"".join([encoded[1], encoded[0], *encoded[2:]])).hexdigest()
    assert digest(SPEC, 11) != hashlib.sha256(b"".join(encoded[:-1])).hexdigest()


def test_ids_are_a_unique_sequence():
    assert [r.id for r in records()] == list(range(SPEC.records))


@pytest.mark.parametrize("payload_size", [8, 33, 64, 101])
def test_payload_size_and_checksum(payload_size):
    spec = SPEC.model_copy(update={"records": 50, "payload_size": payload_size})
    for r in generate(spec, 3):
        assert len(r.payload) == payload_size
        assert r.checksum == zlib.crc32(r.payload.encode())


def test_payloads_differ_between_records():
    payloads = [r.payload for r in records()]
    assert len(set(payloads)) == len(payloads)


def test_keys_stay_within_the_key_space():
    keys = {r.key for r in records()}
    assert keys <= {f"k{i}" for i in range(SPEC.keys)}
    assert len(keys) > 1  # 300 records over 7 keys: more than one key is used


def test_single_key_workload():
    assert {r.key for r in generate(SPEC.model_copy(update={"keys": 1}), 5)} == {"k0"}


def test_event_time_is_monotone_and_follows_the_rate():
    times = [r.event_time for r in records()]
    assert all(a <= b for a, b in zip(times, times[1:]))
    # 300 records at 70/s span about 299/70 seconds of event time
    assert times[-1] - times[0] == round(299 * 1000 / 70)


def test_event_time_does_not_depend_on_the_seed():
    assert [r.event_time for r in records(seed=1)] == [r.event_time for r in records(seed=2)]


def test_encode_decode_round_trip():
    for r in records()[:20]:
        decoded = Record.decode(r.encode())
        assert decoded == r.fields()
        assert Record(**decoded) == r


def test_a_schema_change_drops_widens_and_adds_columns_at_its_record():
    spec = WorkloadSpec(records=10, rate=10, schema_change_at=4)
    before, after = versioned_tables(spec, 7)
    assert before.num_rows == 4 and after.num_rows == 6
    assert before.schema.field("score").type == pa.int32() and "tag" in before.column_names
    assert after.schema.field("score").type == pa.int64() and "region" in after.column_names
    assert "tag" not in after.column_names
    assert min(after["score"].to_pylist()) >= 2**31  # values only the widened type can hold
    encoded = [Record.decode(r.encode()) for r in generate(spec, 7)]
    assert [e["schema_version"] for e in encoded] == [1] * 4 + [2] * 6
    expected = expected_table(spec, 7)
    assert expected["tag"].null_count == 6 and expected["region"].null_count == 4


def test_encode_is_compact_and_deterministic():
    r = records()[0]
    assert r.encode() == r.encode()
    assert b" " not in r.encode()  # payloads are hex, so any space would be a separator


def test_expected_table_matches_generate():
    table = expected_table(SPEC, 11)
    assert table.schema == SCHEMA
    assert table.num_rows == SPEC.records
    assert table.to_pylist() == [r.fields() for r in records(seed=11)]
