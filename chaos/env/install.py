"""Provisioning: Kafka from Maven Central jars, Toxiproxy built with `go install`, the clock shim with `cc`.

Both land in the cache (`CHAOS_HOME`) once and are reused; a marker file is written only after a
complete install, so an interrupted install is redone rather than half-used. Users who already
have the binaries point `KAFKA_HOME` (a Kafka tarball layout) or `TOXIPROXY_BIN` at them.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from chaos.env.clock_shim import shim_library
from chaos.env.launch import Launcher, ProcessLauncher
from chaos.env.maven import resolve_jars
from chaos.env.paths import chaos_home
from chaos.errors import EnvironmentFailure
from drivers.engines import Artifact

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
# Kafka 4.1.1 resolves slf4j-api 1.7.36 and log4j-core 2.24.3; this is the binding for that pair.
SLF4J_BINDING = ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3")
EXPECTED_SLF4J_API = "slf4j-api-1.7."
TOXIPROXY_VERSION = "v2.12.0"
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
log = logging.getLogger(__name__)

_INSTALL_HINTS = {
    "java": "a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)",
    "mvn": "Apache Maven (Debian: apt-get install maven), or set KAFKA_HOME to an unpacked Kafka",
    "go": "Go 1.23+ (https://go.dev/doc/install), or set TOXIPROXY_BIN to a toxiproxy-server",
}


def require_tool(name: str) -> str:
    """The tool's path, or an environment failure (exit 3) saying what to install."""
    path = shutil.which(name)
    if path is None:
        raise EnvironmentFailure(f"`{name}` was not found on PATH. Install {_INSTALL_HINTS[name]}.")
    return path


@dataclass(frozen=True)
class Tools:
    """Everything needed to start the services: the paths are as the launcher sees them (inside
    the images, on the Docker backend)."""

    java: str
    kafka_classpath: str
    toxiproxy_server: Path
    toxiproxy_cli: Path | None
    launcher: Launcher = field(default_factory=ProcessLauncher)


def install(verbose: bool = False) -> Tools:
    """Provision whatever is missing; cheap when everything is cached."""
    java = require_tool("java")
    tools = Tools(
        java=java,
        kafka_classpath=_kafka_classpath(verbose),
        toxiproxy_server=_toxiproxy_binary("server"),
        toxiproxy_cli=_toxiproxy_cli(),
    )
    try:
        shim_library()
    except EnvironmentFailure as e:  # only a clock fault needs it, and says so then
        log.warning("the clock shim is not built, so clock faults cannot run: %s", e)
    return tools


def _kafka_classpath(verbose: bool) -> str:
    home = os.environ.get("KAFKA_HOME")
    if home:
        libs = Path(home) / "libs"
        jars = sorted(libs.glob("*.jar"))
        if not jars:
            raise EnvironmentFailure(f"KAFKA_HOME={home} has no libs/*.jar: expected a Kafka tarball layout.")
        return ":".join(str(j) for j in jars)
    broker = Artifact("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION)
    jars = resolve_jars(chaos_home() / "kafka" / KAFKA_VERSION, "kafka-broker", (broker, Artifact(*SLF4J_BINDING)),
                        f"Kafka {KAFKA_VERSION}", verbose=verbose, instead="or set KAFKA_HOME to an unpacked Kafka")
    _check_slf4j(jars)
    return ":".join(str(j) for j in jars)


def _check_slf4j(jars: list[Path]) -> None:
    names = [p.name for p in jars if p.name.startswith("slf4j-api-")]
    if not any(n.startswith(EXPECTED_SLF4J_API) for n in names):
        raise EnvironmentFailure(
            f"Kafka {KAFKA_VERSION} resolved {names or 'no slf4j-api'}, but the pinned binding "
            f"{':'.join(SLF4J_BINDING)} is for {EXPECTED_SLF4J_API}x: update SLF4J_BINDING."
        )


def _toxiproxy_binary(kind: str) -> Path:
    if kind == "server" and os.environ.get("TOXIPROXY_BIN"):
        path = Path(os.environ["TOXIPROXY_BIN"])
        if not os.access(path, os.X_OK):
            raise EnvironmentFailure(f"TOXIPROXY_BIN={path} is not an executable file.")
        return path
    bindir = chaos_home() / "toxiproxy" / TOXIPROXY_VERSION
    final = bindir / f"toxiproxy-{kind}"
    if not final.exists():
        go = require_tool("go")
        build = bindir / "gobin"
        build.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GOBIN=str(build), CGO_ENABLED="0")
        run_step([go, "install", f"{TOXIPROXY_MODULE}/cmd/{kind}@{TOXIPROXY_VERSION}"],
             what=f"building toxiproxy-{kind} {TOXIPROXY_VERSION}", env=env)
        os.replace(build / kind, final)
    return final


def _toxiproxy_cli() -> Path | None:
    if os.environ.get("TOXIPROXY_BIN"):
        return None
    return _toxiproxy_binary("cli")


def run_step(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """One provisioning command (a build, a package install), or a failure naming `what` with its output's tail."""
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip().splitlines()
        raise EnvironmentFailure(f"{what} failed (exit {proc.returncode})", "\n".join(output[-30:]))
