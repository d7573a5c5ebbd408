"""The evidence a certification case must leave, on runs that left little or nothing.

A run that crashed early has an empty history and a result without verdicts; each scenario must
then say what it lacks, in words the suite can join into its report, rather than raise. These tests
kill mutants of `chaos.certification.evidence` that survived `make mutation` (docs/benchmarks.md,
"Mutation testing"); test_certification.py covers runs that show each scenario.
"""

from __future__ import annotations

import pytest

from chaos.certification.evidence import missing_evidence
from chaos.certification.scenarios import BY_SLUG, certification_rows, slug

ROW = {slug(r): r for r in certification_rows() if not r.plugin}
A_ROW = {  # a row each scenario applies to
    "source-reconnect": "kafka-to-parquet",
    "sink-write-failure": "parquet-batch-to-parquet-2pc",
    "ack-after-commit": "kafka-to-parquet",
    "two-phase-commit": "kafka-transactional-to-parquet-2pc",
    "schema-evolution": "kafka-to-parquet",
    "late-events": "kafka-to-parquet",
}


def problems(scenario: str, result: dict, *events: dict) -> list[str]:
    history = [{"ts": float(i), **e} for i, e in enumerate(events)]
    return missing_evidence(BY_SLUG[scenario], ROW[A_ROW[scenario]], result, history)


@pytest.mark.parametrize("scenario", sorted(A_ROW))
def test_a_run_that_left_nothing_gets_one_sentence_per_missing_piece(scenario):
    found = problems(scenario, {})  # no events, no restarts, no verdicts
    assert found, scenario
    assert all(isinstance(p, str) and p.strip() for p in found), found
    assert ", ".join(found)  # how the suite reports them


def test_a_source_reconnect_without_the_source_s_events_names_both():
    inject_heal = ({"event": "fault.inject", "index": 0, "kind": "down", "target": "worker-kafka"},
                   {"event": "fault.heal", "index": 0})
    (lost, found_again) = problems("source-reconnect", {}, *inject_heal)
    assert "(no source.disconnected)" in lost and "(no source.reconnected)" in found_again


def test_a_crash_without_any_restart_reported_is_no_evidence():
    crash = {"event": "crash", "process": "worker-0", "point": "source.ack.before"}
    (problem,) = problems("ack-after-commit", {}, crash)
    assert problem == "no worker crashed between the sink's commit and the source's ack"
    assert problems("ack-after-commit", {"restarts": {"worker-0": 1}}, crash) == []
    disk = ({"event": "fault.inject", "index": 0, "kind": "disk", "target": "worker-0"},
            {"event": "disk.fault_hit", "process": "worker-0", "op": "write", "mode": "eio"},
            {"event": "fault.heal", "index": 0})
    (problem,) = problems("sink-write-failure", {}, *disk)
    assert "no worker failed over" in problem


@pytest.mark.parametrize("scenario,invariant,count", [("schema-evolution", "schema-compatibility", "after_change"),
                                                      ("late-events", "late-events", "late")])
def test_a_verdict_without_counts_or_no_verdict_shows_nothing_was_checked(scenario, invariant, count):
    seen = [{"event": "schema.change_seen", "worker": 0, "first_id": 60}] if scenario == "schema-evolution" else []
    for result in ({}, {"verdicts": []}, {"verdicts": [{"invariant": invariant, "status": "inconclusive"}]}):
        assert len(problems(scenario, result, *seen)) == 1, result
    assert problems(scenario, {"verdicts": [{"invariant": invariant, "counts": {count: 3}}]}, *seen) == []
