"""The supervisor tells a process that cannot start from one that crashes after it ran, and the
coordinator binds before it publishes, so no port can be taken from under it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from chaos.env.processes import ManagedProcess
from drivers.sdk.history import History, HistoryTail, read_history
from chaos.supervisor import Supervisor
from drivers.runtime.config import JobConfig
from drivers.runtime.protocol import Connection

REPO = Path(__file__).resolve().parents[2]


def _factory(tmp_path: Path, name: str, code: str):
    def start(incarnation: int) -> ManagedProcess:
        return ManagedProcess(name, [sys.executable, "-c", code], tmp_path / "logs" / f"{name}-{incarnation}.log")
    return start


def _wait(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_process_that_never_gets_ready_is_a_crash_loop_named_with_its_log(tmp_path):
    history = History(tmp_path / "history.jsonl", source="harness")
    cannot_bind = "print('OSError: [Errno 98] Address already in use'); raise SystemExit(1)"
    supervisor = Supervisor(history, restart_delay=0.05, ready_events={"coordinator": "coordinator.start"})
    try:
        supervisor.start("coordinator", _factory(tmp_path, "coordinator", cannot_bind))
        assert supervisor.failed.wait(30)
    finally:
        supervisor.stop_all()
    failure = supervisor.failure
    assert failure is not None and failure.process == "coordinator"
    assert "could not start" in failure.describe() and "5 times" in failure.describe()
    assert "Address already in use" in failure.log_tail
    events = [e["event"] for e in read_history(tmp_path / "history.jsonl")]
    assert events.count("process.start") == 5 and "process.crash_loop" in events


def test_exits_while_a_fault_may_explain_them_are_no_crash_loop(tmp_path):
    history = History(tmp_path / "history.jsonl", source="harness")
    supervisor = Supervisor(history, restart_delay=0.05, ready_events={"worker-0": "worker.restored"})
    supervisor.excused = lambda: True
    try:
        supervisor.start("worker-0", _factory(tmp_path, "worker-0", "raise SystemExit(1)"))
        assert _wait(lambda: supervisor.restarts("worker-0") >= 8)
        assert not supervisor.failed.is_set()
    finally:
        supervisor.stop_all()


def test_a_process_that_was_ready_before_each_exit_is_restarted_for_ever(tmp_path):
    history_path = tmp_path / "history.jsonl"
    History(history_path, source="harness").close()
    ready_then_exit = ("import json, os, time;"
                       f"f = open({str(history_path)!r}, 'a');"
                       "f.write(json.dumps({'ts': time.time(), 'source': 'worker-0', 'event': 'worker.restored',"
                       " 'pid': os.getpid()}) + '\\n'); f.close(); time.sleep(0.3); raise SystemExit(1)")
    readied: list[int] = []
    supervisor = Supervisor(History(history_path, source="harness"), restart_delay=0.05,
                            ready_events={"worker-0": "worker.restored"},
                            on_ready=lambda name, event: readied.append(event["pid"]))
    try:
        supervisor.start("worker-0", _factory(tmp_path, "worker-0", ready_then_exit))
        assert _wait(lambda: supervisor.restarts("worker-0") >= 6)
        assert not supervisor.failed.is_set()
        assert len(set(readied)) >= 5, "each incarnation's ready event reaches on_ready"
    finally:
        supervisor.stop_all()


def test_the_coordinator_starts_when_the_port_race_has_taken_a_port(tmp_path):
    # Take a port the way the race takes it: as the local port of an outgoing connection. A listener
    # told that port in advance could not bind it; the coordinator picks its own and publishes it.
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname()) as client:
        taken = client.getsockname()[1]
        with socket.socket() as late_listener:
            try:
                late_listener.bind(("127.0.0.1", taken))
                raced = False
            except OSError:
                raced = True
        assert raced, "a port held by an outgoing connection cannot be bound by a listener"
        config = JobConfig(job_id="port-race", run_dir=str(tmp_path), workers=1, checkpoint_interval=60,
                           profile="in-memory", worker_coordinator_port=1, source="memory-stream", sink="memory")
        job = tmp_path / "job.json"
        job.write_text(config.model_dump_json())
        tail = HistoryTail(config.history_path)
        coordinator = subprocess.Popen([sys.executable, "-m", "drivers.runtime.coordinator", str(job)], cwd=REPO,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            started: list[dict] = []
            assert _wait(lambda: started.extend(e for e in tail.new_events() if e["event"] == "coordinator.start")
                         or started), "the coordinator publishes the port it bound"
            port = started[0]["port"]
            assert port != taken and started[0]["pid"] == coordinator.pid
            conn = Connection.connect("127.0.0.1", port)
            conn.send({"type": "hello", "worker": 0})
            messages: list[dict] = []
            assert _wait(lambda: messages.extend(conn.receive(0.1)) or messages)
            assert messages[0]["type"] == "restore"
            conn.close()
        finally:
            coordinator.terminate()
            coordinator.wait(10)
