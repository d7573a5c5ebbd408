"""Service faults without real services: stale PostgreSQL locks, zombies, the state files a restart
updates, the owner's stop, the keeper that reaps, and a schedule whose slow heal delays nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from chaos.env import postgres as pg
from chaos.env.environment import Environment
from chaos.env.kafka import KafkaPorts, server_properties
from chaos.env.processes import ManagedProcess, ProcessRef, process_start_time
from chaos.env.state import EnvState, LinkPorts, ProcessState
from chaos.workload.producer import WorkloadProgress
from drivers.sdk.history import History, read_history
from faults import process
from faults.catalog import KillFault, PauseFault, TerminateFault
from faults.injector import FaultContext
from faults.schedule import FaultSchedule


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child of this process that was SIGKILLed and is not reaped yet."""
    child = subprocess.Popen(["sleep", "30"])
    os.kill(child.pid, signal.SIGKILL)
    assert _wait(lambda: _state(child.pid) == "Z")
    yield child.pid
    child.wait()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    yield child
    child.kill()
    child.wait()


def test_a_zombie_exists_but_is_not_running(zombie: int):
    ref = ProcessRef(zombie, process_start_time(zombie) or -1)
    assert ref.alive() and not ref.running()
    assert ref.wait_gone(0.1)


def _locks(tmp_path: Path, pid: int) -> tuple[Path, Path, Path]:
    data, sockets = tmp_path / "pg-data", tmp_path / "pg-socket"
    data.mkdir()
    sockets.mkdir()
    (data / "postmaster.pid").write_text(f"{pid}\n{data}\n1700000000\n5432\n")
    (sockets / ".s.PGSQL.5432.lock").write_text(f"{pid}\n{data}\n1700000000\n5432\n")
    return data, sockets, sockets / ".s.PGSQL.5432.lock"


def test_the_lock_of_a_zombie_postmaster_is_removed(tmp_path: Path, zombie: int):
    """PostgreSQL would refuse to start: kill(pid, 0) succeeds for a zombie."""
    data, sockets, socket_lock = _locks(tmp_path, zombie)
    started = time.monotonic()
    removed = pg.clear_stale_locks(data, sockets, zombie_grace=0.3)
    assert set(removed) == {data / "postmaster.pid", socket_lock}
    assert not (data / "postmaster.pid").exists() and not socket_lock.exists()
    assert time.monotonic() - started < 3


def test_a_zombie_reaped_during_the_grace_period_leaves_the_lock_to_postgres(tmp_path: Path):
    child = subprocess.Popen(["sleep", "30"])
    os.kill(child.pid, signal.SIGKILL)
    assert _wait(lambda: _state(child.pid) == "Z")
    data, sockets, _ = _locks(tmp_path, child.pid)
    threading.Timer(0.3, child.wait).start()
    assert pg.clear_stale_locks(data, sockets, zombie_grace=5) == []
    assert (data / "postmaster.pid").exists(), "a lock of a dead pid is PostgreSQL's own business"


def test_the_lock_of_a_reused_pid_is_removed_and_a_live_postmasters_is_kept(tmp_path: Path, sleeper):
    data, sockets, _ = _locks(tmp_path, sleeper.pid)
    assert len(pg.clear_stale_locks(data, sockets, zombie_grace=0.1)) == 2, "sleep is no postmaster of this cluster"
    (tmp_path / "pg-data").rename(tmp_path / "old")
    (tmp_path / "pg-socket").rename(tmp_path / "old-socket")
    looks_like_postmaster = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "postgres", "-D", str(tmp_path / "pg-data")])
    try:
        data, sockets, _ = _locks(tmp_path, looks_like_postmaster.pid)
        assert pg.clear_stale_locks(data, sockets, zombie_grace=0.1) == []
        assert (data / "postmaster.pid").exists()
    finally:
        looks_like_postmaster.kill()
        looks_like_postmaster.wait()


def test_the_broker_session_is_short_enough_for_a_fast_restart():
    props = dict(line.split("=", 1) for line in
                 server_properties(KafkaPorts(1, 2, {"worker-kafka": (3, 4)}), Path("/d")).splitlines())
    assert int(props["broker.session.timeout.ms"]) <= 5000
    assert int(props["broker.heartbeat.interval.ms"]) * 4 <= int(props["broker.session.timeout.ms"])


# --- state files, the owner's stop, the keeper --------------------------------------------------


def _env_state(workdir: Path, processes: dict[str, subprocess.Popen | ManagedProcess]) -> EnvState:
    return EnvState(
        workdir=str(workdir), kafka_direct=1, kafka_controller=2,
        kafka_links={"worker-kafka": LinkPorts(broker=3, proxy=4)}, toxiproxy_api=5,
        processes={name: ProcessState(pid=p.pid, start_time=process_start_time(p.pid) or -1)
                   for name, p in processes.items()},
        detached=False,
    )


@pytest.fixture
def chaos_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CHAOS_HOME of the test's own, so the real shared state file is never touched."""
    home = tmp_path / "home"
    monkeypatch.setenv("CHAOS_HOME", str(home))
    return home


def test_a_restart_is_recorded_in_every_state_file_of_the_environment(tmp_path: Path, chaos_home: Path, sleeper):
    workdir = tmp_path / "env"
    workdir.mkdir()
    old = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        state = _env_state(workdir, {"kafka": old, "toxiproxy": sleeper})
        attached_file = tmp_path / "attached.json"
        shared = chaos_home / "env" / "state.json"
        for path in (workdir / "state.json", attached_file, shared):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(state.model_dump_json())
        other = tmp_path / "other.json"  # another environment's file is never written
        other.write_text(state.model_copy(update={"workdir": str(tmp_path / "elsewhere")}).model_dump_json())
        harness = Environment.load(attached_file)
        harness._record_process("kafka", ProcessRef(sleeper.pid, process_start_time(sleeper.pid) or -1))
        for path in (workdir / "state.json", attached_file, shared):
            assert json.loads(path.read_text())["processes"]["kafka"]["pid"] == sleeper.pid, path
        assert json.loads(other.read_text())["processes"]["kafka"]["pid"] == old.pid
        assert not list(workdir.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
        owner = Environment(state.model_copy(deep=True), state_file=workdir / "state.json")
        assert owner.state.processes["kafka"].pid == old.pid
        owner.reload_processes()
        assert owner.state.processes["kafka"].pid == sleeper.pid
    finally:
        old.kill()
        old.wait()


def test_the_owner_stops_what_the_state_file_records_and_reaps_what_it_started(tmp_path: Path, chaos_home: Path):
    workdir = tmp_path / "env"
    original = ManagedProcess("kafka", ["sleep", "30"], workdir / "logs" / "kafka.log")
    toxiproxy = ManagedProcess("toxiproxy", ["sleep", "30"], workdir / "logs" / "toxiproxy.log")
    owner = Environment(_env_state(workdir, {"kafka": original, "toxiproxy": toxiproxy}), [toxiproxy, original],
                        state_file=workdir / "state.json")
    owner.save(workdir / "state.json")
    # Another harness kills the broker; the owner's keeper reaps it, so it does not stay a zombie.
    os.killpg(original.pid, signal.SIGKILL)
    assert _wait(lambda: _state(original.pid) == "gone"), "the owner must reap its killed child"
    # ...and starts a replacement, detached, that only the state file knows about.
    replacement = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        harness = Environment.load(workdir / "state.json")
        harness._record_process("kafka", ProcessRef(replacement.pid, process_start_time(replacement.pid) or -1))
        owner.stop()
        assert _wait(lambda: _state(replacement.pid) in ("Z", "gone")), "the restarted service leaked"
        assert _state(toxiproxy.pid) == "gone"
    finally:
        replacement.kill()
        replacement.wait()


def test_a_service_restarted_by_an_attached_harness_outlives_it(tmp_path: Path, chaos_home: Path):
    """The detached spawn: no PR_SET_PDEATHSIG, so the harness's exit does not take the service along."""
    script = ("import sys; from chaos.env.processes import ManagedProcess; from pathlib import Path;"
              "p = ManagedProcess('kafka', ['sleep', '30'], Path(sys.argv[1]), detached=True); print(p.pid)")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "log")], capture_output=True, text=True,
                         timeout=30, cwd=Path(__file__).resolve().parents[2], check=True).stdout
    pid = int(out)
    try:
        time.sleep(0.3)
        assert _state(pid) not in ("Z", "gone")
    finally:
        os.killpg(pid, signal.SIGKILL)


# --- fault dispatch and the schedule ------------------------------------------------------------


class _FakeControl:
    """Records what a fault asks of a process owner (the supervisor, or the environment)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def stop_process(self, name: str, graceful: bool):
        self.calls.append(("stop", name, graceful))
        return lambda: self.calls.append(("restart", name))

    def pause_process(self, name: str):
        self.calls.append(("pause", name))
        return lambda: self.calls.append(("resume", name))


def _fault(model, target: str):
    return model.model_validate({"kind": model.model_fields["kind"].annotation.__args__[0],
                                 "target": target, "at": 1, "duration": 2})


@pytest.mark.parametrize("model, graceful", [(KillFault, False), (TerminateFault, True)])
def test_kill_and_terminate_of_a_service_go_to_the_environment_and_the_heal_restarts_it(model, graceful):
    services, pipeline = _FakeControl(), _FakeControl()
    heal = process.inject(_fault(model, "postgres"), FaultContext(None, pipeline, services, Path("-")))  # type: ignore[arg-type]
    assert services.calls == [("stop", "postgres", graceful)] and pipeline.calls == []
    heal()
    assert services.calls[-1] == ("restart", "postgres")


def test_a_pipeline_process_fault_goes_to_the_supervisor():
    services, pipeline = _FakeControl(), _FakeControl()
    heal = process.inject(_fault(KillFault, "worker-1"), FaultContext(None, pipeline, services, Path("-")))  # type: ignore[arg-type]
    heal()
    assert pipeline.calls == [("stop", "worker-1", False), ("restart", "worker-1")] and services.calls == []


def test_pausing_a_service_resumes_it_and_never_restarts_it():
    services = _FakeControl()
    heal = process.inject(_fault(PauseFault, "kafka"), FaultContext(None, _FakeControl(), services, Path("-")))  # type: ignore[arg-type]
    heal()
    assert services.calls == [("pause", "kafka"), ("resume", "kafka")]


@pytest.mark.parametrize("graceful", [False, True])
def test_the_environment_stops_a_service_and_its_heal_restarts_it_on_its_data(graceful):
    env = object.__new__(Environment)
    calls: list[tuple] = []
    env.stop_service = lambda name, graceful: calls.append(("stop", name, graceful))  # type: ignore[method-assign]
    env.restart_service = lambda name: calls.append(("restart", name))  # type: ignore[method-assign]
    heal = env.stop_process("kafka", graceful)
    assert calls == [("stop", "kafka", graceful)]
    heal()
    assert calls[-1] == ("restart", "kafka")


class _SlowSupervisor:
    """Heals (releases) take 1.5s, as a service restart does."""

    def __init__(self) -> None:
        self.held: dict[str, float] = {}

    def stop_process(self, name: str, graceful: bool):
        self.held[name] = time.monotonic()
        return lambda: time.sleep(1.5)

    def pause_process(self, name: str):
        raise AssertionError("not paused in this test")


def test_a_slow_heal_delays_neither_other_faults_nor_the_display(tmp_path: Path):
    faults = [KillFault.model_validate({"kind": "kill", "target": "worker-0", "at": 0, "duration": 0.1}),
              KillFault.model_validate({"kind": "kill", "target": "worker-1", "at": 0.6, "duration": 0.1})]
    supervisor = _SlowSupervisor()
    history = History(tmp_path / "history.jsonl", source="harness")
    context = FaultContext(None, supervisor, _FakeControl(), tmp_path / "disk.json")  # type: ignore[arg-type]
    schedule = FaultSchedule(faults, context, history, WorkloadProgress())
    schedule.start()
    started = time.monotonic()
    try:
        assert _wait(lambda: "worker-1" in supervisor.held, 3)
        assert supervisor.held["worker-1"] - started < 1.2, "the second fault waited for the first heal"
        t = time.monotonic()
        schedule.active()
        assert time.monotonic() - t < 0.2
        assert not schedule.finished(), "a fault being healed is still active"
    finally:
        schedule.close(timeout=10)
        history.close()
    events = [e["event"] for e in read_history(tmp_path / "history.jsonl")]
    assert events.count("fault.inject") == 2 and events.count("fault.heal") == 2
    assert schedule.finished() and not schedule.errors
