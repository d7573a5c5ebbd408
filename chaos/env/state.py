"""An environment's state: what a later harness needs to attach to it, and writing it safely.

A state file is written atomically and updated one writer at a time (a restarted service's new pid
goes into every state file of its environment at once).
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from chaos.env.containers import ContainerRef
from chaos.env.launch import ServiceRef
from chaos.env.processes import ProcessRef


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file of this process and a rename: a reader sees the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class FileLock:
    """An exclusive lock (flock) on a lock file, across processes; its directory is created if needed."""

    def __init__(self, path: Path):
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def state_lock(workdir: Path) -> FileLock:
    """One update of an environment's state files at a time: `workdir/state.lock`."""
    return FileLock(workdir / "state.lock")


class LinkPorts(BaseModel):
    broker: int
    proxy: int


class ProcessState(BaseModel):
    pid: int
    start_time: int
    container: str | None = None
    """The service's container on the Docker backend (its `pid` is then the container's first process)."""

    @classmethod
    def of(cls, ref: ServiceRef) -> "ProcessState":
        return cls(pid=ref.pid, start_time=ref.start_time, container=getattr(ref, "container", None))

    def ref(self) -> ServiceRef:
        if self.container is not None:
            return ContainerRef(self.container, self.pid, self.start_time)
        return ProcessRef(self.pid, self.start_time)


class NodeState(BaseModel):
    """One node of a cluster: its harness, replication and controller listeners, and a listener per
    client link (advertised at that link's proxy for this node)."""

    direct: int
    replication: int
    controller: int
    links: dict[str, LinkPorts]

    @property
    def ports(self) -> list[int]:
        return [self.direct, self.replication, self.controller,
                *(port for link in self.links.values() for port in (link.broker, link.proxy))]


class EnvState(BaseModel):
    """What a later harness process needs to attach: ports, processes and log locations."""

    workdir: str
    kafka_direct: int
    kafka_controller: int
    kafka_links: dict[str, LinkPorts]
    toxiproxy_api: int
    processes: dict[str, ProcessState]
    detached: bool
    postgres: int | None = None
    """PostgreSQL's direct port on 127.0.0.1, when the environment has one."""
    nodes: list[NodeState] = []
    """A cluster's nodes (`chaos.env.cluster`); empty for one broker. Node 0's ports are also
    `kafka_direct`, `kafka_controller` and `kafka_links`."""
    separate_controllers: bool = False
    """The cluster's controllers run as processes of their own, `controller-<i>` on node i's
    controller port, rather than inside the nodes."""
    backend: Literal["native", "docker"] = "native"
    """Where the services run: processes of this machine, or Docker containers (`chaos/env/containers.py`)."""
    images: dict[str, str] = {}
    """On the Docker backend, each service's image (a restart runs the same one)."""

    @property
    def logs(self) -> Path:
        return Path(self.workdir) / "logs"

    @property
    def ports(self) -> list[int]:
        """Every port the services listen on: what the environment leases."""
        links = [port for link in self.kafka_links.values() for port in (link.broker, link.proxy)]
        single = [self.kafka_direct, self.kafka_controller, *links]
        kafka = [port for node in self.nodes for port in node.ports] or single
        return [*kafka, self.toxiproxy_api, *([self.postgres] if self.postgres is not None else [])]


def read_state(path: Path, workdir: str) -> EnvState | None:
    """The state in `path` if it describes the environment in `workdir`, else None."""
    try:
        state = EnvState.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None
    return state if state.workdir == workdir else None


def state_files(workdir: str, candidates: list[Path | None]) -> list[tuple[Path, EnvState]]:
    """Each distinct candidate file that describes the environment in `workdir`, with its content."""
    found: list[tuple[Path, EnvState]] = []
    for path in candidates:
        if path is None or any(path.resolve() == p.resolve() for p, _ in found):
            continue
        if (state := read_state(path, workdir)) is not None:
            found.append((path, state))
    return found
