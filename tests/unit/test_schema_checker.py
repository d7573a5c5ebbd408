"""The schema-compatibility checker, on synthetic outputs that pass and that fail."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from chaos.checkers.schema import check_schema
from chaos.experiment.models import WorkloadSpec
from drivers.sdk.records import expected_table

SPEC = WorkloadSpec(records=200, rate=100, schema_change_at=120)


def test_an_output_under_the_final_schema_passes():
    expected = expected_table(SPEC, 3)
    verdict = check_schema(expected, expected.slice(10))
    assert verdict.status == "pass"
    assert verdict.counts["wrong_records"] == 0 and verdict.counts["columns"] == 3


def test_a_widened_column_whose_values_were_truncated_fails():
    expected = expected_table(SPEC, 3)
    truncated = pc.cast(expected["score"], pa.int32(), safe=False)  # what a sink that never widened writes
    output = expected.set_column(expected.schema.get_field_index("score"), "score", truncated)
    verdict = check_schema(expected, output)
    assert verdict.status == "fail"
    assert verdict.counts["wrong_score"] == 80  # every record after the change
    assert verdict.examples == [120, 121, 122, 123, 124]


def test_an_added_column_lost_on_the_way_fails():
    expected = expected_table(SPEC, 3)
    verdict = check_schema(expected, expected.drop_columns(["region"]))
    assert verdict.status == "fail"
    assert "region" in verdict.summary and verdict.counts["missing_columns"] == 1


def test_a_dropped_column_must_still_read_as_null_for_later_records():
    expected = expected_table(SPEC, 3)
    tags = expected["tag"].to_pylist()
    tags[150] = "ghost"  # a value where the column had been dropped
    output = expected.set_column(expected.schema.get_field_index("tag"), "tag", pa.array(tags, pa.string()))
    verdict = check_schema(expected, output)
    assert verdict.status == "fail" and verdict.examples == [150]
