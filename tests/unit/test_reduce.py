"""Smaller fault schedules: chunk removals (ddmin) and one-step simplifications of one fault."""

from __future__ import annotations

import pytest

from faults.catalog import CrashFault, KillFault, LatencyFault, PartitionFault
from faults.nemesis import SETTLE, NemesisSpec, generate
from faults.reduce import MIN_DURATION, MIN_SHIFT, chunk_removals, overlapping, simplifications

KILL = KillFault(kind="kill", after_ready=2, target="worker-0", duration=0.8)
CUT = PartitionFault(kind="partition", after_ready=1, target="worker-kafka", duration=2)
SLOW = LatencyFault(kind="latency", at=3, target="workload-kafka", duration=2, latency_ms=300, jitter_ms=40,
                    toxicity=0.5)


def test_chunk_removals_drop_each_chunk_in_turn_and_keep_the_order():
    faults = [KILL, CUT, SLOW, KILL.model_copy(update={"after_ready": 5})]
    halves = chunk_removals(faults, 2)
    assert [c for _, c in halves] == [faults[2:], faults[:2]]
    assert [d for d, _ in halves] == ["remove faults 0-1", "remove faults 2-3"]
    singles = chunk_removals(faults, 4)
    assert [c for _, c in singles] == [faults[1:], [faults[0], *faults[2:]], [*faults[:2], faults[3]], faults[:3]]
    assert singles[1][0] == "remove fault 1"
    # Three faults in two parts: a chunk of two, then the one left.
    assert [len(c) for _, c in chunk_removals(faults[:3], 2)] == [1, 2]
    assert chunk_removals([], 2) == []


def test_a_kill_becomes_a_terminate_then_shorter_then_earlier_boldest_first():
    steps = simplifications(KILL)
    assert [(s.aspect, s.change) for s in steps] == [
        ("kind", "kill -> terminate"), ("duration", "duration 0.8s -> 0.1s"), ("duration", "duration 0.8s -> 0.4s"),
        ("trigger", "after_ready 2.0s -> 0.0s"), ("trigger", "after_ready 2.0s -> 1.0s")]
    terminate = steps[0].fault
    assert terminate.kind == "terminate" and terminate.target == "worker-0" and terminate.duration == 0.8
    assert [s.fault.duration for s in steps[1:3]] == [0.1, 0.4]
    assert [s.fault.after_ready for s in steps[3:]] == [0.0, 1.0]
    assert KILL.duration == 0.8  # the original is untouched


def test_a_partition_becomes_a_down_and_one_way():
    steps = {s.change: s.fault for s in simplifications(CUT)}
    assert steps["partition -> down"].kind == "down"
    assert steps["direction both -> upstream"].direction == "upstream"


def test_a_toxic_is_weakened_one_parameter_at_a_time():
    steps = {s.change: s for s in simplifications(SLOW)}
    assert steps["latency_ms 300 -> 150"].fault.latency_ms == 150
    assert steps["latency_ms 300 -> 150"].aspect == "latency_ms"
    assert steps["jitter_ms 40 -> 0"].fault.jitter_ms == 0
    assert steps["toxicity 0.5 -> 0.25"].fault.toxicity == 0.25
    assert steps["at 3.0s -> 1.5s"].fault.at == 1.5
    assert all(step.fault.kind == "latency" for step in steps.values())


def test_a_fault_is_not_moved_by_less_than_the_shift_nor_a_delay_halved_below_its_floor():
    """A shrink once spent a dozen runs halving a latency's start from 4.5 s to a millisecond."""
    near = KILL.model_copy(update={"after_ready": 0.15})
    assert [s.change for s in simplifications(near) if s.aspect == "trigger"] == ["after_ready 0.15s -> 0.0s"]
    nearer = KILL.model_copy(update={"after_ready": MIN_SHIFT / 2})
    assert [s for s in simplifications(nearer) if s.aspect == "trigger"] == []
    slow = {s.change for s in simplifications(SLOW.model_copy(update={"latency_ms": 14}))}
    assert "latency_ms 14 -> 7" not in slow and "jitter_ms 40 -> 0" in slow
    assert "latency_ms 20 -> 10" in {s.change for s in simplifications(SLOW.model_copy(update={"latency_ms": 20}))}


def test_simplifying_ends():
    fault = KillFault(kind="kill", after_ready=0.0, target="worker-0", duration=MIN_DURATION)
    steps = simplifications(fault)
    assert [s.change for s in steps] == ["kill -> terminate"]
    assert simplifications(steps[0].fault) == []
    crash = CrashFault(kind="crash", point="sink.prepare.after", hit=3)
    assert [(s.change, s.fault.hit) for s in simplifications(crash)] == [("hit 3 -> 1", 1), ("hit 3 -> 2", 2)]
    assert simplifications(crash.model_copy(update={"hit": 1})) == []


@pytest.mark.parametrize("seed", range(8))
def test_repeated_simplification_of_a_drawn_schedule_terminates_with_valid_faults(seed):
    faults = generate(NemesisSpec(until=30, interval=1, max_concurrent=3), seed,
                      ["workload-kafka", "worker-kafka", "worker-coordinator"], ["coordinator", "worker-0"])
    assert not overlapping(faults, SETTLE)  # the nemesis keeps targets apart
    for fault in faults:
        for _ in range(200):
            steps = simplifications(fault)
            if not steps:
                break
            fault = steps[-1].fault  # always the gentlest step: the longest chain
        else:
            pytest.fail(f"simplifying {fault} did not end")


def test_overlapping_faults_on_one_target_are_found():
    later = KILL.model_copy(update={"after_ready": 2.5})
    assert overlapping([KILL, later], SETTLE)
    assert not overlapping([KILL, later.model_copy(update={"after_ready": 2.8 + SETTLE})], SETTLE)
    assert not overlapping([KILL, later.model_copy(update={"target": "coordinator"})], SETTLE)
    # `at` and `after_ready` count from different moments: they are not compared.
    assert not overlapping([KILL, KillFault(kind="kill", at=2, target="worker-0", duration=1)], SETTLE)
