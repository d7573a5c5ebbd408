"""Services as Docker containers (the `docker` backend), started and faulted through the Docker API.

A container runs the very command line the native backend would run, with the host's network
(`network_mode=host`) so that every listener binds 127.0.0.1 as natively, and with the environment's
directory bind-mounted at the same path, so that configuration, data and logs are where the native
code looks for them. A restart (the heal of a kill) is `docker start` of the same container.

`ContainerRef` and `ManagedContainer` answer what `ProcessRef` and `ManagedProcess` answer, so the
environment and its service faults treat either the same way; kill, terminate and pause go to the
container (`kill`, `stop`, `pause`), never to a host pid.

Every container carries the labels `chaos.owner` (its environment's directory) and `chaos.log`
(where its output is saved when it is removed), so any later harness can find and remove what an
environment left: `remove_containers`. Unlike a child process, a container does not die with a
harness that is SIGKILLed: a private environment's reaper removes it then (`chaos/env/reaper.py`),
and `chaos env down` a shared one's.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from chaos.env.docker_engine import docker_errors, engine
from chaos.env.launch import checked_output
from chaos.env.processes import process_start_time, tail
from chaos.errors import EnvironmentFailure

OWNER_LABEL = "chaos.owner"
LOG_LABEL = "chaos.log"
LIVE = ("created", "running", "paused", "restarting")
"""Docker's states of a container whose process has not exited (paused counts, as SIGSTOP does)."""


def _container(container_id: str) -> Any | None:
    try:
        return engine().containers.get(container_id)
    except docker_errors().NotFound:
        return None


@dataclass(frozen=True)
class ContainerRef:
    """Enough to find a service's container later, from any harness: its id (the pid of its first
    process and that process's start time are kept for the records, as `ProcessRef`'s are)."""

    container: str
    pid: int
    start_time: int

    @classmethod
    def of(cls, container: Any) -> "ContainerRef":
        """The ref of a container just started (its attributes reloaded)."""
        pid = container.attrs["State"]["Pid"]
        start = process_start_time(pid) if pid else None
        return cls(container.id, pid, start if start is not None else -1)

    def _get(self) -> Any | None:
        return _container(self.container)

    def alive(self) -> bool:
        container = self._get()
        return container is not None and container.status in LIVE

    def running(self) -> bool:
        return self.alive()

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def signal(self, sig: int) -> None:
        """`docker kill --signal`: SIGKILL, or SIGTERM for a clean shutdown (ignored once exited)."""
        container = self._get()
        if container is not None and container.status in LIVE:
            try:
                if container.status == "paused":  # Docker refuses to signal a paused container
                    container.unpause()
                if sig != signal.SIGCONT:
                    container.kill(signal=int(sig))
            except docker_errors().DockerException:
                pass  # it exited meanwhile

    def pause(self) -> None:
        """`docker pause`: every process of the container frozen at once (the cgroup freezer)."""
        container = self._get()
        if container is None or container.status != "running":
            raise EnvironmentFailure(f"container {self.container[:12]} is not running: it cannot be paused")
        container.pause()

    def unpause(self) -> None:
        container = self._get()
        if container is not None and container.status == "paused":
            container.unpause()

    def shut_down(self, graceful: bool, timeout: float) -> bool:
        """A service fault: `docker stop` (the image's stop signal: SIGTERM for Kafka, PostgreSQL's
        fast-shutdown SIGINT; SIGKILL after `timeout`) or `docker kill`. The container stays, for
        its output, until the environment is removed. True if it shut down cleanly in time."""
        container = self._get()
        if container is None or container.status not in LIVE:
            raise EnvironmentFailure(f"container {self.container[:12]} is not running")
        if container.status == "paused":
            container.unpause()
        started = time.monotonic()
        if graceful:
            container.stop(timeout=max(1, round(timeout)))
            return time.monotonic() - started < timeout
        container.kill()
        if not self.wait_gone(10):
            raise EnvironmentFailure(f"container {self.container[:12]} survived docker kill for 10s")
        return False

    def start(self) -> "ContainerRef":
        """`docker start`: the stopped container again, with its command, mounts and own layer (the
        heal of a kill or terminate, as a machine is restarted); its new first process."""
        container = self._get()
        if container is None:
            raise EnvironmentFailure(f"container {self.container[:12]} is gone: it cannot be started again")
        try:
            container.start()
            container.reload()
        except docker_errors().DockerException as e:
            raise EnvironmentFailure(f"container {self.container[:12]} did not start again: {e}") from e
        return ContainerRef.of(container)

    def stop(self, grace: float = 10.0) -> int | None:
        """Stop (SIGTERM, then SIGKILL after `grace`), save its output to its log, and remove it."""
        container = self._get()
        if container is None:
            return None
        return _remove(container, grace)


def _remove(container: Any, grace: float) -> int | None:
    try:
        if container.status == "paused":
            container.unpause()
        if container.status in LIVE:
            container.stop(timeout=max(0, round(grace)))
        container.reload()
        code = container.attrs["State"]["ExitCode"]
        _save_output(container)
        container.remove(force=True)
        return code
    except docker_errors().NotFound:
        return None


def _save_output(container: Any) -> None:
    """Append the container's stdout and stderr to the log its labels name."""
    path = container.labels.get(LOG_LABEL)
    if path:
        try:
            with open(path, "ab") as log:
                log.write(container.logs(stdout=True, stderr=True))
        except (OSError, docker_errors().DockerException):
            pass


@dataclass
class ContainerLauncher:
    """Starts services as containers of `images` (service name to image), with `mounts` (host paths,
    bound at the same path) and the labels of the environment that owns them."""

    images: dict[str, str]
    owner: str
    mounts: list[str] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=lambda: {"postgres": "postgres"})
    """Who a service runs as in its image (root unless named: PostgreSQL refuses root)."""
    backend: str = "docker"

    def _options(self, service: str, argv: Sequence[str], log_path: Path | None) -> dict[str, Any]:
        kind = service.split("-")[0]  # a numbered service runs its kind's image
        if kind not in self.images:
            raise EnvironmentFailure(f"the Docker backend has no image for {service} ({', '.join(self.images)})")
        return {"image": self.images[kind], "entrypoint": [argv[0]], "command": list(argv[1:]),
                "network_mode": "host", "user": self.users.get(kind, "0:0"),
                "volumes": {path: {"bind": path, "mode": "rw"} for path in self.mounts},
                "labels": {OWNER_LABEL: self.owner, LOG_LABEL: str(log_path or "")}}

    def spawn(self, name: str, argv: Sequence[str], log_path: Path, detached: bool,
              env: dict[str, str] | None = None) -> "ManagedContainer":
        return ManagedContainer(name, log_path, self._options(name, argv, log_path), env or {})

    def run(self, service: str, argv: Sequence[str], timeout: float) -> str:
        """Run a one-shot tool (Kafka's storage formatter) in the service's image; its output."""
        options = self._options(service, argv, None)
        try:
            container = engine().containers.run(detach=True, **options)
        except docker_errors().DockerException as e:
            raise EnvironmentFailure(f"{service}: {options['image']} did not run: {e}") from e
        try:
            outcome = container.wait(timeout=timeout)
            stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
            stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
        except (OSError, docker_errors().DockerException) as e:  # requests' timeouts are OSErrors
            what = " ".join(argv[:5])
            raise EnvironmentFailure(f"{service}: {what} did not finish within {timeout:.0f}s: {e}") from e
        finally:
            container.remove(force=True)
        return checked_output(subprocess.CompletedProcess(list(argv), outcome["StatusCode"], stdout, stderr), argv)

    def service_env(self, workdir: Path, service: str) -> dict[str, str] | None:
        """Nothing preloaded: the clock shim is built for the host's C library, not the image's."""
        return None


class ManagedContainer:
    """A service's container, answering as a `ManagedProcess` does."""

    def __init__(self, name: str, log_path: Path, options: dict[str, Any], env: dict[str, str]):
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = engine().containers.run(detach=True, environment=env, **options)
            self._container.reload()
        except docker_errors().DockerException as e:  # a missing image is pulled first: no registry, no image
            raise EnvironmentFailure(f"{name}: the container of {options['image']} did not start: {e}") from e
        self.ref = ContainerRef.of(self._container)
        self._code: int | None = None

    @property
    def pid(self) -> int:
        return self.ref.pid

    def poll(self) -> int | None:
        """None while the container runs (or is paused); its exit code once it has exited."""
        if self._code is not None:
            return self._code
        try:
            self._container.reload()
        except docker_errors().NotFound:
            self._code = -1
            return self._code
        except docker_errors().DockerException:
            return None
        if self._container.status in LIVE:
            return None
        self._code = self._container.attrs["State"]["ExitCode"]
        return self._code

    def signal(self, sig: int) -> None:
        self.ref.signal(sig)

    def stop(self, grace: float = 10.0) -> int | None:
        code = self.ref.stop(grace)
        return code if code is not None else self._code

    def kill(self) -> int | None:
        return self.stop(grace=0)

    def release(self) -> int | None:
        """Save the output of a container that has exited and remove it."""
        code = self.poll()
        if code is not None:
            self.ref.stop(0)
        return code

    def log_tail(self, lines: int = 30) -> str:
        try:
            return self._container.logs(tail=lines).decode(errors="replace")
        except docker_errors().DockerException:
            return tail(self.log_path, lines)


def remove_containers(owner: str) -> int:
    """Remove every container of the environment `owner` (its output saved first); how many there were."""
    try:
        found = engine().containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}"})
    except (EnvironmentFailure, docker_errors().DockerException):
        return 0
    for container in found:
        _remove(container, grace=10)
    return len(found)


def remove_exited_containers() -> list[str]:
    """Remove the containers of environments whose services have all exited: what a harness killed
    before it could remove them left (its dockerd died, and the engine found them stopped when it
    came back). A running container belongs to a live environment and is left alone."""
    found = engine().containers.list(all=True, filters={"label": OWNER_LABEL})
    owners = {c.labels[OWNER_LABEL] for c in found if c.status in LIVE}
    stale = [c for c in found if c.labels[OWNER_LABEL] not in owners]
    for container in stale:
        _remove(container, grace=0)
    return [c.name for c in stale]


def leftover_containers() -> list[str]:
    """The names of the containers any chaos environment left on this engine."""
    return [c.name for c in engine().containers.list(all=True, filters={"label": OWNER_LABEL})]
