"""The names experiments may target: network links and supervised processes."""

from __future__ import annotations

import difflib
from typing import Sequence

KAFKA_LINKS = ("workload-kafka", "worker-kafka", "sink-kafka")
"""Links to Kafka, each with a broker listener of its own: the workload's producer, the pipeline's
workers reading their source, and a Kafka sink's producer (so that its writes can fail while the
source reads on)."""

RUNTIME_LINKS = ("worker-coordinator", "coordinator-store", "worker-catalog")
"""Links the runner creates per run: workers to the coordinator, and (distributed-durable) the
coordinator to its PostgreSQL checkpoint store and the workers to the Iceberg catalog there."""

NETWORK_LINKS = KAFKA_LINKS + RUNTIME_LINKS
"""Every named link through Toxiproxy that a network fault may target."""

SERVICES = ("kafka", "postgres")
"""The environment's services that process faults may pause, kill or terminate (then restart)."""

MAX_WORKERS = 8
PROCESSES = ("coordinator",) + tuple(f"worker-{i}" for i in range(MAX_WORKERS))
"""Processes the runner supervises and faults may kill: the coordinator and each worker."""


def suggest(word: str, choices: Sequence[str]) -> str:
    """'; did you mean X?' when a close match exists, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def known(name: str, choices: Sequence[str], what: str) -> str:
    """`name` if it is one of `choices`; otherwise an error listing them, with a did-you-mean."""
    if name not in choices:
        plural = "processes" if what == "process" else f"{what}s"
        raise ValueError(f"unknown {what} {name!r} ({plural}: {', '.join(choices)}){suggest(name, choices)}")
    return name
