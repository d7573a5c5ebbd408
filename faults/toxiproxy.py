"""The one typed client for Toxiproxy's HTTP API.

It talks HTTP itself rather than through toxiproxy-python, whose host and port are process-global
class attributes and whose requests have no timeout: every call here is bounded, and two clients
for two servers can live side by side.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Stream = Literal["upstream", "downstream"]


class ToxiproxyError(RuntimeError):
    """Toxiproxy refused a request or could not be reached."""


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True)
class Toxic:
    """A toxic as Toxiproxy defines it: a type, a direction, a toxicity and its attributes."""

    name: str
    type: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)


class Toxiproxy:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0):
        self.base = f"http://{host}:{port}"
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as e:
            raise ToxiproxyError(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}") from e
        except (urllib.error.URLError, OSError) as e:
            raise ToxiproxyError(f"{method} {path}: {e}") from e
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            return payload.decode()

    def version(self) -> str:
        result = self._call("GET", "/version")
        return result["version"] if isinstance(result, dict) else str(result).strip()

    def proxies(self) -> dict[str, Proxy]:
        return {name: _proxy(p) for name, p in self._call("GET", "/proxies").items()}

    def create(self, name: str, listen: str, upstream: str) -> Proxy:
        return _proxy(self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True}))

    def ensure(self, name: str, listen: str, upstream: str) -> Proxy:
        """Create the proxy, or replace one of that name that listens or points elsewhere."""
        existing = self.proxies().get(name)
        if existing and existing.upstream == upstream and existing.listen == listen:
            return existing
        if existing:
            self.delete(name)
        return self.create(name, listen, upstream)

    def retarget(self, name: str, upstream: str) -> Proxy:
        """Point an existing proxy at a new upstream. Toxiproxy restarts its listener on the same
        address: open connections close, the toxics stay, and a disabled proxy stays disabled."""
        return _proxy(self._call("PATCH", f"/proxies/{name}", {"upstream": upstream}))

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disabling a proxy closes its connections and refuses new ones: the link is down."""
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(self, proxy: str, toxic: Toxic) -> None:
        self._call("POST", f"/proxies/{proxy}/toxics", asdict(toxic))

    def remove_toxic(self, proxy: str, toxic_name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic_name}")

    def toxics(self, proxy: str) -> list[Toxic]:
        return [
            Toxic(t["name"], t["type"], t["stream"], t.get("toxicity", 1.0), t.get("attributes", {}))
            for t in self._call("GET", f"/proxies/{proxy}/toxics")
        ]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")


def _proxy(p: dict[str, Any]) -> Proxy:
    return Proxy(p["name"], p["listen"], p["upstream"], bool(p["enabled"]))
