"""A small client for Kafka Connect's REST API, on 127.0.0.1 only, every call bounded by a timeout."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

TIMEOUT = 5.0
"""Seconds one REST call may take: a paused or dying worker must not hang the harness."""


class ConnectRestError(Exception):
    pass


class ConnectRest:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def up(self) -> bool:
        """The worker answers (it has joined its group and serves requests)."""
        try:
            self._call("GET", "/")
            return True
        except ConnectRestError:
            return False

    def put_config(self, name: str, config: dict[str, str]) -> None:
        self._call("PUT", f"/connectors/{name}/config", config)

    def status(self, name: str) -> dict[str, Any] | None:
        """The connector's and its tasks' states, or None before the connector exists."""
        try:
            return self._call("GET", f"/connectors/{name}/status")
        except ConnectRestError as e:
            if "404" in str(e):
                return None
            raise

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/connectors/{name}")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                text = response.read()
        except urllib.error.HTTPError as e:
            raise ConnectRestError(f"{method} {path}: HTTP {e.code} {e.read()[:300]!r}") from None
        except (OSError, ValueError) as e:
            raise ConnectRestError(f"{method} {path}: {e}") from None
        return json.loads(text) if text else None
