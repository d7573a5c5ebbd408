"""The Docker engine the `docker` backend talks to: the running one, or one started here for a while.

Users have an engine of their own, and `engine()` only finds it. A machine without one (this
project's CI) gets one from `running_engine()`: Debian's `docker.io` installed when missing (as
root), `dockerd` started as a child process group, and stopped when the block ends. It needs no
bridge network or iptables rules, since every container of the backend uses the host's network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Iterator

from chaos.env.install import run_step
from chaos.env.processes import ManagedProcess
from chaos.errors import EnvironmentFailure

if TYPE_CHECKING:
    import docker

START_TIMEOUT = 60.0


def docker_errors() -> ModuleType:
    """`docker.errors`, imported on first use: the SDK costs a native run half a second to import."""
    from docker import errors

    return errors


def engine() -> "docker.DockerClient":
    """A client of the local Docker engine, or an environment failure saying how to get one."""
    import docker

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker_errors().DockerException as e:
        raise EnvironmentFailure(f"no Docker engine answers ({e}): start dockerd (Debian: apt-get install "
                                 "docker.io), or use the native backend") from e
    return client


def engine_answers() -> bool:
    try:
        engine()
    except EnvironmentFailure:
        return False
    return True


@contextmanager
def running_engine(logs: Path) -> Iterator[None]:
    """A Docker engine for the block: the one already running, else `dockerd` started here (and
    stopped at the end, with every container it still runs)."""
    if engine_answers():
        yield
        return
    dockerd = _dockerd()
    server = ManagedProcess("dockerd", [dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false"],
                            logs / "dockerd.log")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not engine_answers():
            if server.poll() is not None or time.monotonic() > deadline:
                raise EnvironmentFailure("dockerd did not start", server.log_tail())
            time.sleep(0.5)
        yield
    finally:
        server.stop(grace=30)


def _dockerd() -> str:
    """dockerd's path, installing Debian's docker.io first when it is missing and we may."""
    return _installed("dockerd", "docker.io", "no Docker engine runs and dockerd is not installed")


def compose_command() -> list[str]:
    """How to run Docker Compose here: the `docker compose` plug-in, else `docker-compose`
    (installing Debian's, Compose 1.29, when neither is here and we may)."""
    docker = shutil.which("docker")
    if docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True,
                                             timeout=30).returncode == 0:
        return [docker, "compose"]
    return [_installed("docker-compose", "docker-compose", "Docker Compose is not installed")]


def _installed(program: str, package: str, missing: str) -> str:
    """`program`'s path, installing Debian's `package` first when it is missing and we may (as root)."""
    found = shutil.which(program)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise EnvironmentFailure(f"{missing}: install it (Debian: apt-get install {package})")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        run_step(argv, " ".join(argv), env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    found = shutil.which(program)
    if found is None:
        raise EnvironmentFailure(f"{package} was installed but left no {program} on PATH")
    return found
