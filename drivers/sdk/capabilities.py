"""What a connector can do, and how far it has earned trust: the facts the guarantee matrix and the
certification suite are derived from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Maturity(str, Enum):
    CERTIFIED = "Certified"
    PREVIEW = "Preview"
    EXPERIMENTAL = "Experimental"


SCHEMA_CHANGES = frozenset({"add", "drop", "widen"})
"""The column changes a schema can go through mid-stream: a column added, dropped, or widened
(int32 to int64). The workload's schema change does all three at once."""


@dataclass(frozen=True)
class Capabilities:
    replayable: bool = False
    """A source can re-read from an earlier position."""
    transactional: bool = False
    """Commits atomically with the source position (Kafka transactions, read_committed)."""
    event_time: bool = False
    """Records carry an event time."""
    two_phase: bool = False
    """A sink can pre-commit (durable, invisible) and commit later."""
    idempotent_commit: bool = False
    """Committing the same thing twice is a no-op (a source: re-reading from a checkpointed position is harmless)."""
    durable: bool = True
    """Written data survives a crash of the process that wrote it."""
    networked: bool = False
    """Reached over a network link (through Toxiproxy), so the testbed can cut it."""
    schema_changes: frozenset[str] = frozenset()
    """Which column changes (`SCHEMA_CHANGES`) the connector carries through mid-stream."""
    late_routing: bool = False
    """A source whose splits carry the event-time watermarks that late-event routing needs."""
    key_order: bool = False
    """A sink that keeps each key's records in the order they were read (a partitioned log)."""
    disk_faults_per_file: bool = True
    """A file sink whose every file write an injected disk fault can strike (its writes pass the
    fault hook one by one), so a fault can land between two files of one commit. False when a
    library writes the files out of the hook's reach (a native writer, such as delta-rs's, left to write
    the data files itself)."""

    def __post_init__(self) -> None:
        unknown = set(self.schema_changes) - SCHEMA_CHANGES
        if unknown:
            raise ValueError(f"unknown schema changes {sorted(unknown)}; known: {sorted(SCHEMA_CHANGES)}")

    @property
    def takes_every_schema_change(self) -> bool:
        return self.schema_changes == SCHEMA_CHANGES
