"""The power cut (`lose_unfsynced`): it kills every pipeline process before its writes are lost,
its heal starts them all again, and only a sink whose output is local files can take it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chaos.experiment.consistency import inconsistencies
from chaos.experiment.models import PipelineSpec
from faults.catalog import KillFault, LoseUnfsyncedFault
from faults.injector import FaultContext
from faults.power import inject

CUT = LoseUnfsyncedFault(kind="lose_unfsynced", at_commits=3, duration=1)


class Recorder:
    """Both the supervisor and the storage: what the fault did, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def stop_process(self, name: str, graceful: bool):
        self.calls.append(f"kill {name}" if not graceful else f"terminate {name}")
        return lambda: self.calls.append(f"restart {name}")

    def lose_unfsynced(self) -> int:
        self.calls.append("lose")
        return 2


def test_every_process_dies_before_the_writes_are_lost_and_the_heal_restarts_them_all(tmp_path):
    recorder = Recorder()
    context = FaultContext(toxiproxy=None, processes=recorder, services=None,  # type: ignore[arg-type]
                           disk_control=tmp_path / "disk.json", pipeline=("coordinator", "worker-0"),
                           storage=recorder)
    heal = inject(CUT, context)
    assert recorder.calls == ["kill coordinator", "kill worker-0", "lose"]
    heal()
    assert recorder.calls[3:] == ["restart coordinator", "restart worker-0"]
    with pytest.raises(ValueError, match="lazyfs"):
        inject(CUT, FaultContext(toxiproxy=None, processes=recorder, services=None,  # type: ignore[arg-type]
                                 disk_control=tmp_path / "disk.json", pipeline=("coordinator",)))


def test_only_a_sink_writing_local_files_takes_a_power_cut_and_it_targets_the_whole_pipeline():
    with pytest.raises(ValidationError):
        LoseUnfsyncedFault(kind="lose_unfsynced", at_commits=3, duration=1, target="worker-0")
    files = PipelineSpec(source="kafka-transactional", sink="parquet-2pc", profile="distributed-durable")
    assert inconsistencies(files, None, [(0, CUT)]) == []
    lake = PipelineSpec(source="kafka-transactional", sink="iceberg-2pc", profile="distributed-durable")
    problems = inconsistencies(lake, None, [(0, CUT)])
    assert [(where, "does not write its output there" in why) for where, why in problems] == [
        (("faults", 0, "kind"), True)]


def test_a_power_cut_collides_with_a_kill_of_a_pipeline_process_at_the_same_moment_not_with_a_broker_s():
    files = PipelineSpec(source="kafka-transactional", sink="parquet-2pc", profile="distributed-durable")
    kill = KillFault(kind="kill", target="worker-0", at_commits=3, duration=1)
    problems = inconsistencies(files, None, [(0, CUT), (1, kill)])
    assert [(where, "one kill, terminate or pause at a time" in why) for where, why in problems] == [
        (("faults", 1, "at_commits"), True)]
    broker = KillFault(kind="kill", target="kafka", at_commits=3, duration=1)
    assert inconsistencies(files, None, [(0, CUT), (1, broker)]) == []
    later = KillFault(kind="kill", target="worker-0", at_commits=5, duration=1)
    assert inconsistencies(files, None, [(0, CUT), (1, later)]) == []
