"""Every network fault kind, injected through the real Toxiproxy, and its effect measured.

The link under test is a scratch proxy in front of a small TCP echo server on 127.0.0.1, so each
effect (delay, throttling, cut connections, sliced data) is seen on plain bytes.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from chaos.workload.producer import WorkloadProgress
from drivers.sdk.history import History, read_history
from faults import network
from faults.catalog import (
    BandwidthFault,
    DownFault,
    LatencyFault,
    LimitDataFault,
    PartitionFault,
    ResetPeerFault,
    SlicerFault,
    SlowCloseFault,
    TimeoutFault,
)
from faults.schedule import FaultSchedule
from tests.integration.conftest import links_only
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
LINK = "workload-kafka"  # a real link name, re-pointed at the echo server for these tests


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(10)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


@pytest.fixture
def echo_link(environment) -> Iterator[int]:
    """The proxy port of LINK, forwarding to an echo server; restored to Kafka afterwards."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ports = environment.state.kafka_links[LINK]
    environment.toxiproxy.ensure(LINK, f"127.0.0.1:{ports.proxy}", f"127.0.0.1:{server.server_address[1]}")
    try:
        yield ports.proxy
    finally:
        server.shutdown()
        server.server_close()
        environment.reset()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _round_trip(port: int, payload: bytes = b"ping") -> float:
    with _connect(port) as s:
        start = time.monotonic()
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += s.recv(65536)
        return time.monotonic() - start


def _fault(cls, **fields):
    return cls(target=LINK, at=0, duration=1, **fields)


@contextmanager
def injected(environment, fault) -> Iterator[None]:
    heal = network.inject(fault, links_only(environment))
    try:
        yield
    finally:
        heal()


def test_latency_delays_each_round_trip(environment, echo_link):
    baseline = _round_trip(echo_link)
    with injected(environment, _fault(LatencyFault, kind="latency", latency_ms=300)):
        slowed = _round_trip(echo_link)
    assert slowed >= baseline + 0.28
    assert _round_trip(echo_link) < 0.25


def test_bandwidth_throttles_throughput(environment, echo_link):
    payload = b"x" * 100_000
    assert _round_trip(echo_link, payload) < 1.0
    with injected(environment, _fault(BandwidthFault, kind="bandwidth", rate_kbps=50)):
        assert _round_trip(echo_link, payload) >= 1.5


def test_timeout_drops_data_then_closes_the_connection(environment, echo_link):
    with injected(environment, _fault(TimeoutFault, kind="timeout", timeout_ms=300)):
        with _connect(echo_link) as s:
            start = time.monotonic()
            s.sendall(b"lost")
            assert s.recv(100) == b""
            assert 0.25 <= time.monotonic() - start < 3


def test_reset_peer_resets_the_connection(environment, echo_link):
    with injected(environment, _fault(ResetPeerFault, kind="reset_peer", timeout_ms=0)):
        with _connect(echo_link) as s:
            with pytest.raises((ConnectionResetError, BrokenPipeError)):  # raised by the OS on the RST
                for _ in range(20):
                    s.sendall(b"data")
                    assert s.recv(100) != b"", "the connection was closed in order (FIN), not reset"
                    time.sleep(0.05)


def test_limit_data_closes_after_the_byte_budget(environment, echo_link):
    with injected(environment, _fault(LimitDataFault, kind="limit_data", bytes=1000)):
        with _connect(echo_link) as s:
            s.sendall(b"y" * 5000)
            got = b""
            while chunk := s.recv(65536):
                got += chunk
        assert 0 < len(got) <= 1000


def test_slicer_cuts_data_into_small_pieces_without_changing_it(environment, echo_link):
    with injected(environment, _fault(SlicerFault, kind="slicer", average_size=10,
                                                         size_variation=5, delay_us=2000)):
        payload = bytes(range(256)) * 4
        with _connect(echo_link) as s:
            s.sendall(payload)
            chunks = []
            while sum(map(len, chunks)) < len(payload):
                chunks.append(s.recv(65536))
        assert b"".join(chunks) == payload
        assert len(chunks) >= 10


def test_slow_close_delays_the_close(environment, echo_link):
    with injected(environment, _fault(SlowCloseFault, kind="slow_close", delay_ms=600)):
        with _connect(echo_link) as s:
            s.sendall(b"bye")
            assert s.recv(100) == b"bye"
            start = time.monotonic()
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100) == b""
            assert time.monotonic() - start >= 0.5


def test_down_refuses_connections_until_healed(environment, echo_link):
    with injected(environment, _fault(DownFault, kind="down")):
        with pytest.raises(ConnectionRefusedError):
            _connect(echo_link)
    assert _round_trip(echo_link) < 0.25


def test_one_way_partition_blackholes_only_that_direction(environment, echo_link):
    with injected(environment, _fault(PartitionFault, kind="partition", direction="upstream")):
        with _connect(echo_link) as s:
            s.settimeout(1.5)
            s.sendall(b"void")
            with pytest.raises(socket.timeout):
                s.recv(100)
    assert environment.toxiproxy.toxics(LINK) == []


def test_the_schedule_records_injection_and_heal_on_the_timeline(environment, echo_link, tmp_path):
    history = History(tmp_path / "history.jsonl", "test")
    fault = LatencyFault(kind="latency", target=LINK, at=0.2, duration=1, latency_ms=300)
    schedule = FaultSchedule([fault], links_only(environment), history, WorkloadProgress())
    schedule.start()
    try:
        assert wait_for(schedule.active, 5, "the latency fault") == ["latency workload-kafka"]
        assert _round_trip(echo_link) >= 0.28
        assert schedule.wait(5)
    finally:
        schedule.close()
        history.close()
    events = [e for e in read_history(tmp_path / "history.jsonl") if e["event"].startswith("fault.")]
    assert [e["event"] for e in events] == ["fault.inject", "fault.heal"]
    assert events[1]["ts"] - events[0]["ts"] == pytest.approx(1.0, abs=0.3)
    assert environment.toxiproxy.toxics(LINK) == []
