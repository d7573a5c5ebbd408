"""Corrupted files against real table formats: a committed data file damaged in place is named by a
checker, never passed. A flipped bit in a Parquet file's payload data, and a Delta table's first data
file cut in half, each read back with the format's own reader (pyarrow, delta-rs)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


def test_a_flipped_bit_in_a_committed_parquet_file_is_named_as_corruption(run_experiment):
    run = run_experiment(REPO / "experiments" / "corrupt-bitflip.yaml")
    assert run.code == 1, run.stdout + run.stderr
    assert run.verdict("faults-applied")["status"] == "pass"  # the bit was flipped, in a committed file
    phantoms, readable = run.verdict("no-phantoms"), run.verdict("readable-output")
    # Which one names it depends on where the bit fell: a value (a bad checksum) or the encoding (no read).
    assert (phantoms["status"] == "fail" and phantoms["counts"]["corrupted"] >= 1) or readable["status"] == "fail", \
        run.result["verdicts"]


def test_a_truncated_delta_data_file_fails_readable_output_with_the_readers_error(run_experiment):
    run = run_experiment(REPO / "experiments" / "corrupt-truncate.yaml")
    assert run.code == 1, run.stdout + run.stderr
    assert run.verdict("faults-applied")["status"] == "pass"
    readable = run.verdict("readable-output")
    assert readable["status"] == "fail" and "part-" in readable["summary"], readable
    assert run.result["status"] == "violation"
