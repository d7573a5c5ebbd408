"""The links and processes a pipeline really has: what its faults may target.

Derived from the connector table: each kind names the links its processes use (`Connector.links`),
the runtime adds the workers' link to the coordinator, and the distributed-durable profile adds
the coordinator's link to its checkpoint store and puts a catalog database (if a kind has one)
behind the `worker-catalog` link.
"""

from __future__ import annotations

from typing import Protocol

from drivers.connectors import SINKS, SOURCES
from drivers.sdk.links import NETWORK_LINKS


class Pipeline(Protocol):
    source: str
    sink: str
    profile: str
    workers: int


def pipeline_links(pipeline: Pipeline) -> list[str]:
    """The pipeline's links, in the order of `NETWORK_LINKS`."""
    distributed = pipeline.profile == "distributed-durable"
    used = {"worker-coordinator", *(["coordinator-store"] if distributed else [])}
    for kind in (SOURCES[pipeline.source], SINKS[pipeline.sink]):
        used |= {link for link in kind.links if link != "worker-catalog" or distributed}
    return [link for link in NETWORK_LINKS if link in used]


def pipeline_processes(pipeline: Pipeline) -> list[str]:
    return ["coordinator"] + [f"worker-{i}" for i in range(pipeline.workers)]


def available_targets(pipeline: Pipeline) -> tuple[list[str], list[str]]:
    """`(links, processes)`: what a nemesis may draw from for this pipeline."""
    return pipeline_links(pipeline), pipeline_processes(pipeline)
