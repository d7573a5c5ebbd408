"""The links and processes a pipeline really has: what its faults may target.

Derived from the connector table: each kind names the links its processes use (`Connector.links`),
the runtime adds the workers' link to the coordinator, and the distributed-durable profile adds
the coordinator's link to its checkpoint store and puts a catalog database (if a kind has one)
behind the `worker-catalog` link. A black-box engine's processes are its own (`connect-0`, ...),
and its connector names their links (`drivers.engines`); a `command` pipeline's processes are
`command-0`, ... in the order written, and use the links our workers would.
"""

from __future__ import annotations

from typing import Any, Protocol

from chaos.experiment.shape import KafkaShape
from drivers.connectors import SINKS, SOURCES
from drivers.engines import COMMAND, ENGINE_CONNECTORS, KAFKA_CONNECT, NATIVE
from drivers.sdk.links import NETWORK_LINKS
from faults.targets import CONTROLLERS, NODES, pair_links


class Pipeline(Protocol):
    source: str
    sink: str
    profile: str
    workers: int
    engine: str
    connector: str | None
    commands: list[Any]


def pipeline_links(pipeline: Pipeline) -> list[str]:
    """The pipeline's links, in the order of `NETWORK_LINKS`."""
    if pipeline.engine == COMMAND:  # the user's processes reach the source and the sink as our workers would
        used = {*SOURCES[pipeline.source].links, *SINKS[pipeline.sink].links} - {"worker-catalog"}
        return [link for link in NETWORK_LINKS if link in used]
    if pipeline.engine != NATIVE:  # a black box: its own processes' links, and the producer's
        used = {*SOURCES[pipeline.source].links} - {"worker-kafka"} | {*ENGINE_CONNECTORS[pipeline.connector].links}
        return [link for link in NETWORK_LINKS if link in used]
    distributed = pipeline.profile == "distributed-durable"
    used = {"worker-coordinator", *(["coordinator-store"] if distributed else [])}
    for kind in (SOURCES[pipeline.source], SINKS[pipeline.sink]):
        used |= {link for link in kind.links if link != "worker-catalog" or distributed}
    return [link for link in NETWORK_LINKS if link in used]


def pipeline_processes(pipeline: Pipeline) -> list[str]:
    if pipeline.engine == KAFKA_CONNECT:
        return [f"connect-{i}" for i in range(pipeline.workers)]
    if pipeline.engine == COMMAND:
        return [f"command-{i}" for i in range(len(pipeline.commands))]
    return ["coordinator"] + [f"worker-{i}" for i in range(pipeline.workers)]


def pipeline_roles(pipeline: Pipeline) -> list[str]:
    """The process roles a fault may target, resolved to a process when it fires."""
    return list(ENGINE_CONNECTORS[pipeline.connector].roles) if pipeline.connector is not None else []


def available_targets(pipeline: Pipeline, shape: KafkaShape = KafkaShape()) -> tuple[list[str], list[str]]:
    """`(links, processes)`: what a nemesis may draw from for this pipeline; on a cluster, also the
    links between its processes and the processes themselves (its controllers too, when apart)."""
    if shape.brokers == 1:
        return pipeline_links(pipeline), pipeline_processes(pipeline)
    separate = shape.separate_controllers
    return ([*pipeline_links(pipeline), *(link.name for link in pair_links(separate))],
            [*pipeline_processes(pipeline), *NODES, *(CONTROLLERS if separate else ())])
