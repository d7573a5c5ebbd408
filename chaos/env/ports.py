"""Ports for services that must be told their port before they bind it, safe from two races.

Kafka's listeners, PostgreSQL, Toxiproxy's API and its proxies are given a port number in advance,
so there is a gap between choosing the number and binding it. Two things can take the port in
that gap:

- **an outgoing connection.** The kernel gives every outgoing TCP connection a local port from
  its ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), and a port chosen by binding
  port 0 comes from that same range. A Kafka client, a Toxiproxy upstream or a PostgreSQL client
  can hold it for the whole run. So ports here come from *outside* the ephemeral range, where
  the kernel never puts an outgoing connection.
- **another environment on the same machine.** Each chosen port gets a lease file in a directory
  shared by every harness of this user, written under an exclusive lock, so two environments
  never choose the same port. A lease lasts `LEASE_SECONDS` from its last renewal: long enough
  to cover a start, a run or a service's restart. After that a port is only taken again if
  nothing listens on it.

Listeners we own (the coordinator, test servers) need none of this: they bind port 0 first and
publish the port they got.
"""

from __future__ import annotations

import errno
import json
import os
import random
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from chaos.env.state import FileLock

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10_000
"""Below this, ports are the well-known and registered ones that other programs listen on."""
LEASE_SECONDS = 600.0


def ephemeral_range(source: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (inclusive)."""
    try:
        low, high = (int(part) for part in source.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def reserved_range(ephemeral: tuple[int, int]) -> range:
    """The larger of the two gaps around the ephemeral range: below it (from LOWEST_PORT) or above it."""
    low, high = ephemeral
    below = range(LOWEST_PORT, low)
    above = range(high + 1, 65536)
    chosen = below if len(below) >= len(above) else above
    if len(chosen) < 100:
        raise RuntimeError(f"the ephemeral port range {low}-{high} leaves no room for the testbed's own ports")
    return chosen


def default_lease_dir() -> Path:
    """One directory for every harness of this user on this machine."""
    return Path(tempfile.gettempdir()) / f"chaos-port-leases-{os.getuid()}"


def bindable(port: int) -> bool:
    """Nothing listens on 127.0.0.1:`port` (or holds it bound) right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def bind_failure(text: str) -> bool:
    """Whether an error or a log says that a port was already taken when a service bound it."""
    lowered = text.lower()
    return any(sign in lowered for sign in ("address already in use", "could not bind", "bindexception",
                                            f"errno {errno.EADDRINUSE}"))


@dataclass
class PortLeases:
    """Chooses ports outside the ephemeral range and leases them to one owner (an environment)."""

    directory: Path = field(default_factory=default_lease_dir)
    ports: range = field(default_factory=lambda: reserved_range(ephemeral_range()))
    clock: Callable[[], float] = time.time
    free: Callable[[int], bool] = bindable

    def reserve(self, owner: str, count: int) -> list[int]:
        """`count` distinct ports that no live lease holds and nothing listens on, leased to `owner`."""
        chosen: list[int] = []
        with self._locked():
            for port in self._candidates():
                if self._leased(port) or not self.free(port):
                    continue
                self._write(port, owner)
                chosen.append(port)
                if len(chosen) == count:
                    return chosen
        self.release(owner, chosen)
        raise RuntimeError(f"no {count} free ports left in {self.ports.start}-{self.ports.stop - 1}")

    def renew(self, owner: str, ports: list[int]) -> None:
        """Extend the leases of `owner`'s ports (before a planned outage, say a service's restart)."""
        with self._locked():
            for port in ports:
                if self._owner(self._path(port)) in (owner, None):
                    self._write(port, owner)

    def release(self, owner: str, ports: list[int] | None = None) -> None:
        """Give back `owner`'s leases on `ports`, or all of them (another owner's lease stays)."""
        with self._locked():
            paths = [self._path(p) for p in ports] if ports is not None else self.directory.glob("*.lease")
            for path in paths:
                if self._owner(path) == owner:
                    path.unlink(missing_ok=True)

    def _candidates(self) -> Iterator[int]:
        """Every port of the range once, from a random start, so that harnesses spread out."""
        start = random.Random(os.getpid() ^ time.monotonic_ns()).randrange(len(self.ports))
        for offset in range(len(self.ports)):
            yield self.ports[(start + offset) % len(self.ports)]

    def _path(self, port: int) -> Path:
        return self.directory / f"{port}.lease"

    def _lease(self, path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _owner(self, path: Path) -> str | None:
        lease = self._lease(path)
        return None if lease is None else lease.get("owner")

    def _leased(self, port: int) -> bool:
        lease = self._lease(self._path(port))
        return lease is not None and self.clock() - float(lease.get("renewed", 0)) < LEASE_SECONDS

    def _write(self, port: int, owner: str) -> None:
        self._path(port).write_text(json.dumps({"owner": owner, "pid": os.getpid(), "renewed": self.clock()}))

    def _locked(self) -> FileLock:
        """One harness at a time chooses ports."""
        return FileLock(self.directory / ".lock")

