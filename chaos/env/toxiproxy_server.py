"""The Toxiproxy server process, bound to 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path

from chaos.env.install import Tools
from chaos.env.launch import Service
from chaos.errors import EnvironmentFailure
from faults.toxiproxy import Toxiproxy, ToxiproxyError


def start_toxiproxy(tools: Tools, api_port: int, logs: Path, detached: bool) -> Service:
    """Start the server; returns once it answers `/version`."""
    argv = [str(tools.toxiproxy_server), "-host", "127.0.0.1", "-port", str(api_port)]
    server = tools.launcher.spawn("toxiproxy", argv, logs / "toxiproxy.log", detached)
    client = Toxiproxy(api_port, timeout=1.0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise EnvironmentFailure(f"toxiproxy exited with code {server.poll()} during start-up", server.log_tail())
        try:
            client.version()
            return server
        except ToxiproxyError:
            time.sleep(0.1)
    raise EnvironmentFailure("toxiproxy did not answer /version within 30s", server.log_tail())
