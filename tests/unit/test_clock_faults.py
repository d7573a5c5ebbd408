"""Clock faults: the model, the offsets a jump, a skew and a strobe write, the shim that a real
process reads them through, and what premature-read makes of a commit record dated by a moved clock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError

from chaos.checkers.reads import check_premature_reads
from chaos.checks import clock_moved_until
from chaos.env.clock_shim import clock_env, shim_library
from chaos.experiment.consistency import inconsistencies
from chaos.experiment.models import PipelineSpec
from chaos.sides.visibility import units_table
from drivers.sdk.events import Event
from drivers.sdk.history import TRUE_EPOCH, History, read_history, true_epoch
from faults.catalog import ClockFault
from faults.clock import clock_file, inject, offset_at, read_offset, write_offset
from faults.injector import FaultContext

REPO = Path(__file__).resolve().parents[2]


def clock(**fields) -> ClockFault:
    return ClockFault(**{"kind": "clock", "mode": "jump", "target": "coordinator", "offset": "-30s",
                         "duration": "4s", "after_ready": 1, **fields})


def context(run_dir) -> FaultContext:
    return FaultContext(toxiproxy=None, processes=None, services=None, disk_control=run_dir / "disk.json",  # type: ignore[arg-type]
                        clock_file=lambda target: clock_file(run_dir / "clock", target))


def test_an_offset_runs_either_way_and_every_bad_field_is_named():
    assert clock(offset="-2m").offset == -120.0 and clock(offset="90s").offset == 90.0
    assert [clock(target=t).target for t in ("kafka", "kafka-1", "controller-2", "controller-leader")] == [
        "kafka", "kafka-1", "controller-2", "controller-leader"]
    for bad, field in [({"offset": 0}, "offset"), ({"offset": "-40d"}, "offset"), ({"target": "postgres"}, "target"),
                       ({"duration": 0}, "duration"), ({"period": "1s"}, "period")]:
        with pytest.raises(ValidationError) as error:
            clock(**bad)
        assert field in str(error.value), (bad, str(error.value))


def test_a_skew_drifts_evenly_and_a_strobe_flips_every_period():
    skew = clock(mode="skew", offset="60s", duration="4s")
    assert [offset_at(skew, t) for t in (0, 1, 2, 4, 9)] == [0.0, 15.0, 30.0, 60.0, 60.0]
    strobe = clock(mode="strobe", offset="-10s", period="500ms")
    assert [offset_at(strobe, t) for t in (0.1, 0.6, 1.1, 1.6)] == [-10.0, 0.0, -10.0, 0.0]
    assert offset_at(clock(), 3.0) == -30.0


def test_only_the_native_engine_s_processes_and_one_clock_fault_at_a_time():
    native = PipelineSpec(source="kafka-transactional", sink="parquet-2pc", profile="distributed-durable")
    assert inconsistencies(native, None, [(0, clock())]) == []
    connect = PipelineSpec(source="kafka-transactional", sink="iceberg-2pc", profile="distributed-durable",
                           engine="kafka-connect", connector="iceberg-sink")
    assert [where for where, _ in inconsistencies(connect, None, [(0, clock())])][-1] == ("faults", 0, "kind")
    overlapping = inconsistencies(native, None, [(0, clock()), (1, clock(mode="strobe", after_ready=3))])
    assert [(where, "one clock" in why) for where, why in overlapping] == [(("faults", 1, "after_ready"), True)]


def test_a_jump_holds_until_healed_and_a_strobe_keeps_flipping_until_healed(tmp_path):
    offsets = clock_file(tmp_path / "clock", "coordinator")
    with pytest.raises(FileNotFoundError):
        inject(clock(), context(tmp_path))  # not started with the shim
    clock_env(tmp_path, "coordinator")
    heal = inject(clock(), context(tmp_path))
    assert read_offset(offsets) == -30.0
    heal()
    assert read_offset(offsets) == 0.0
    heal = inject(clock(mode="strobe", offset="5s", period="100ms"), context(tmp_path))
    seen = set()
    deadline = time.monotonic() + 2
    while len(seen) < 2 and time.monotonic() < deadline:
        seen.add(read_offset(offsets))
        time.sleep(0.01)
    heal()
    assert seen == {5.0, 0.0} and read_offset(offsets) == 0.0


def test_a_process_started_with_the_shim_reads_the_moved_wall_clock_and_a_true_monotonic_one(tmp_path):
    """A real process: its time.time() follows the offset file, its time.monotonic() and its sleeps do not."""
    env = clock_env(tmp_path, "worker-0")
    assert str(shim_library()) in env["LD_PRELOAD"]
    offsets = clock_file(tmp_path / "clock", "worker-0")
    write_offset(offsets, -3600.0)
    probe = ("import time; wall, mono = time.time(), time.monotonic(); time.sleep(0.05); "
             "print(wall - mono, time.monotonic() - mono)")
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True,
                         text=True, timeout=30, check=True).stdout.split()
    epoch, slept = float(out[0]), float(out[1])
    assert abs(epoch - (true_epoch() - 3600.0)) < 1.0  # an hour behind
    assert 0.05 <= slept < 1.0  # the sleep kept its length
    write_offset(offsets, 0.0)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=30, check=True)
    assert abs(float(out.stdout.split()[0]) - true_epoch()) < 1.0


def test_a_history_keeps_the_true_clock_in_a_process_whose_wall_clock_moved(tmp_path):
    env = clock_env(tmp_path, "coordinator")
    write_offset(clock_file(tmp_path / "clock", "coordinator"), 600.0)
    history = tmp_path / "history.jsonl"
    script = ("from pathlib import Path; from drivers.sdk.history import History; "
              "from drivers.sdk.events import Event; "
              f"History(Path({str(history)!r}), source='coordinator').append(Event.COORDINATOR_START)")
    before = time.time()
    subprocess.run([sys.executable, "-c", script], env={**env, TRUE_EPOCH: str(true_epoch()), "PYTHONPATH": str(REPO)},
                   timeout=30, check=True)
    History(history, source="harness").append(Event.RUN_DRAINED)
    coordinator, harness = read_history(history)
    assert before - 0.5 < coordinator["ts"] <= harness["ts"] < time.time() + 0.5  # not ten minutes ahead


def test_a_commit_record_dated_by_a_moved_clock_is_counted_not_judged():
    history = [{"ts": 10.0, "event": Event.FAULT_INJECT, "index": 0, "kind": "clock", "target": "worker-0"},
               {"ts": 12.0, "event": Event.FAULT_INJECT, "index": 1, "kind": "kill", "target": "worker-1"},
               {"ts": 14.0, "event": Event.FAULT_HEAL, "index": 0}, {"ts": 15.0, "event": Event.FAULT_HEAL, "index": 1}]
    assert clock_moved_until(history) == 14.0
    assert clock_moved_until(history[1:2] + history[3:]) is None
    units = units_table([(1000, pa.array([1], pa.int64())), (2000, pa.array([2], pa.int64()))], {2000: 15.55})
    verdict = check_premature_reads([], units, {1000: 12.0, 2000: 15.5})  # 1000's record: no reliable time
    assert verdict.status == "inconclusive" and verdict.counts["units_without_commit_time"] == 1
    assert verdict.counts["units_committed_before_decided"] == 0
