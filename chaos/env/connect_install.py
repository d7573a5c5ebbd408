"""Provisioning for the `kafka-connect` engine: the Connect runtime at the broker's version, and one
plug-in directory per connector (`drivers.engines.ENGINE_CONNECTORS`), all from Maven Central
through `resolve_jars`, every version pinned.

A plug-in's directory holds its jars only, less the SLF4J API that the runtime's class loader
provides, so Connect's plug-in isolation loads it as one plug-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chaos.env.install import KAFKA_VERSION, SLF4J_BINDING, require_tool
from chaos.env.maven import resolve_jars
from chaos.env.paths import chaos_home
from drivers.engines import ENGINE_CONNECTORS, KAFKA_CONNECT, Artifact, EngineConnector


@dataclass(frozen=True)
class ConnectTools:
    """What starting a Connect worker needs: java, the runtime's classpath, and `plugin.path`."""

    java: str
    classpath: str
    plugin_path: Path


def install_connect(verbose: bool = False) -> ConnectTools:
    """Resolve whatever is missing (the runtime and every Connect connector); cheap when cached."""
    home = chaos_home() / "kafka-connect"
    runtime = resolve_jars(home / "runtime" / KAFKA_VERSION, "connect-runtime", (
        Artifact("org.apache.kafka", "connect-runtime", KAFKA_VERSION),
        Artifact("org.apache.kafka", "connect-json", KAFKA_VERSION),
        Artifact(*SLF4J_BINDING),
    ), f"Kafka Connect {KAFKA_VERSION}", verbose=verbose)
    for connector in ENGINE_CONNECTORS.values():
        if connector.engine == KAFKA_CONNECT:
            resolve_jars(plugin_directory(connector), connector.name, connector.artifacts,
                         f"the {connector.title} {connector.version}", exclude=("slf4j-api",), verbose=verbose)
    return ConnectTools(require_tool("java"), ":".join(str(j) for j in runtime), home / "plugins")


def plugin_directory(connector: EngineConnector) -> Path:
    return chaos_home() / "kafka-connect" / "plugins" / f"{connector.name}-{connector.version}"
