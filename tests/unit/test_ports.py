"""Ports the testbed names before a service binds them: outside the kernel's ephemeral range, leased
so that two environments never choose the same one, and never one that something listens on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chaos.env.ports import LEASE_SECONDS, PortLeases, bind_failure, ephemeral_range, reserved_range


def _leases(tmp_path: Path, ports: range = range(20000, 20010), **kwargs) -> PortLeases:
    return PortLeases(directory=tmp_path / "leases", ports=ports, **kwargs)


def test_the_reserved_range_lies_outside_the_ephemeral_range(tmp_path):
    source = tmp_path / "range"
    source.write_text("32768\t60999\n")
    assert ephemeral_range(source) == (32768, 60999)
    chosen = reserved_range((32768, 60999))
    assert chosen.start >= 10000 and chosen.stop - 1 < 32768
    assert reserved_range((1024, 20000)) == range(20001, 65536)  # the gap above is the larger one
    with pytest.raises(RuntimeError):
        reserved_range((10000, 65500))


def test_the_machine_range_never_yields_an_ephemeral_port(tmp_path):
    low, high = ephemeral_range()
    ports = PortLeases(directory=tmp_path / "leases").reserve("env-a", 20)
    assert len(set(ports)) == 20
    assert not any(low <= port <= high for port in ports)


def test_two_owners_never_get_the_same_port(tmp_path):
    leases = _leases(tmp_path, free=lambda port: True)
    first = leases.reserve("env-a", 6)
    second = leases.reserve("env-b", 4)
    assert not set(first) & set(second)
    with pytest.raises(RuntimeError, match="no 1 free ports"):
        leases.reserve("env-c", 1)
    leases.release("env-a")
    assert set(leases.reserve("env-c", 6)) == set(first)


def test_a_port_something_listens_on_is_skipped(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        taken = listener.getsockname()[1]
        leases = _leases(tmp_path, ports=range(taken, taken + 1))
        with pytest.raises(RuntimeError):
            leases.reserve("env-a", 1)


def test_an_expired_lease_is_reclaimed_and_a_renewed_one_is_not(tmp_path):
    now = [1000.0]
    leases = _leases(tmp_path, ports=range(20000, 20001), clock=lambda: now[0], free=lambda port: True)
    (port,) = leases.reserve("env-a", 1)
    now[0] += LEASE_SECONDS - 1
    leases.renew("env-a", [port])
    now[0] += LEASE_SECONDS - 1
    with pytest.raises(RuntimeError):
        leases.reserve("env-b", 1)
    now[0] += 2
    assert leases.reserve("env-b", 1) == [port]
    leases.release("env-a", [port])  # not env-a's any more: it stays env-b's
    with pytest.raises(RuntimeError):
        leases.reserve("env-c", 1)


def test_bind_failures_are_recognised_in_each_service_s_words():
    assert bind_failure("java.net.BindException: Address already in use")
    assert bind_failure('FATAL:  could not bind IPv4 address "127.0.0.1": Address already in use')
    assert bind_failure("listen tcp 127.0.0.1:20001: bind: address already in use")
    assert not bind_failure("Connection refused")
