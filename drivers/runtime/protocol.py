"""The worker <-> coordinator wire protocol: one JSON object per line over TCP.

Messages, coordinator to worker: `restore` (after hello: where to resume, what to commit),
`checkpoint` (prepare now), `commit` (the checkpoint is persisted), `ping`.
Worker to coordinator: `hello`, `prepared` (positions and pending handles), `committed`.
"""

from __future__ import annotations

import json
import select
import socket
from typing import Any

Message = dict[str, Any]


class Connection:
    """A framed, non-blocking-read connection. `receive` never waits longer than its timeout."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        self.closed = False

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 5.0) -> "Connection":
        return cls(socket.create_connection((host, port), timeout=timeout))

    def send(self, message: Message, timeout: float = 10.0) -> None:
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall((json.dumps(message, separators=(",", ":")) + "\n").encode())
        except OSError:
            self.closed = True
            raise

    def receive(self, timeout: float) -> list[Message]:
        """Every complete message that arrives within `timeout` (possibly none)."""
        if self.closed:
            return []
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if readable:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
            self._buffer += chunk
        messages = []
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            messages.append(json.loads(line))
        return messages

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
