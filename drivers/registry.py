"""Every connector the testbed knows: its capability profile, maturity label and role.

The delivery-guarantee matrix (`chaos/matrix.py`) is derived from these profiles, so a
connector's guarantee follows from what it can do, not from a table someone keeps by hand.
The maturity labels are declared here and earned in `chaos certify`, which computes them from the
suite's results and fails when a connector declared Certified falls short (docs/certification.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal


class Maturity(str, Enum):
    CERTIFIED = "Certified"
    PREVIEW = "Preview"
    EXPERIMENTAL = "Experimental"


@dataclass(frozen=True)
class Capabilities:
    replayable: bool = False
    """A source can re-read from an earlier position."""
    transactional: bool = False
    """Commits atomically with the source position (Kafka transactions, read_committed)."""
    event_time: bool = False
    two_phase: bool = False
    """A sink can pre-commit (durable, invisible) and commit later."""
    idempotent_commit: bool = False
    """Committing the same thing twice is a no-op (a source: re-reading from a checkpointed position is harmless)."""
    durable: bool = True
    """Written data survives a crash of the process that wrote it."""
    networked: bool = False
    """Reached over a network link (through Toxiproxy), so the testbed can cut it."""


@dataclass(frozen=True)
class ConnectorKind:
    name: str
    role: Literal["source", "sink"]
    title: str
    capabilities: Capabilities
    maturity: Maturity


_KINDS = (
    ConnectorKind("kafka", "source", "Kafka", Capabilities(replayable=True, event_time=True, networked=True),
                  Maturity.CERTIFIED),
    ConnectorKind("kafka-transactional", "source", "Kafka (transactional)",
                  Capabilities(replayable=True, transactional=True, event_time=True, networked=True),
                  Maturity.CERTIFIED),
    ConnectorKind("parquet-batch", "source", "Parquet (batch)",
                  Capabilities(replayable=True, idempotent_commit=True), Maturity.CERTIFIED),
    ConnectorKind("iceberg-batch", "source", "Iceberg (batch)",
                  Capabilities(replayable=True, idempotent_commit=True), Maturity.CERTIFIED),
    ConnectorKind("delta-batch", "source", "Delta (batch, local)",
                  Capabilities(replayable=True, idempotent_commit=True), Maturity.PREVIEW),
    ConnectorKind("hudi-batch", "source", "Hudi (batch, local)",
                  Capabilities(replayable=True, idempotent_commit=True), Maturity.CERTIFIED),
    ConnectorKind("memory-stream", "source", "In-memory stream", Capabilities(event_time=True, durable=False),
                  Maturity.PREVIEW),
    ConnectorKind("parquet", "sink", "Parquet", Capabilities(), Maturity.CERTIFIED),
    ConnectorKind("parquet-2pc", "sink", "Parquet (two-phase)",
                  Capabilities(two_phase=True, idempotent_commit=True), Maturity.CERTIFIED),
    ConnectorKind("kafka-transactional", "sink", "Kafka (transactional)",
                  Capabilities(transactional=True, two_phase=True, idempotent_commit=True, networked=True),
                  Maturity.CERTIFIED),
    ConnectorKind("iceberg-batch", "sink", "Iceberg (batch)", Capabilities(), Maturity.CERTIFIED),
    ConnectorKind("iceberg-2pc", "sink", "Iceberg (two-phase)",
                  Capabilities(two_phase=True, idempotent_commit=True), Maturity.CERTIFIED),
    ConnectorKind("delta-batch", "sink", "Delta (batch)", Capabilities(), Maturity.PREVIEW),
    ConnectorKind("delta-2pc", "sink", "Delta (two-phase)",
                  Capabilities(two_phase=True, idempotent_commit=True), Maturity.PREVIEW),
    ConnectorKind("hudi-2pc", "sink", "Hudi (two-phase)",
                  Capabilities(two_phase=True, idempotent_commit=True), Maturity.CERTIFIED),
    ConnectorKind("memory", "sink", "In-memory sink", Capabilities(durable=False), Maturity.PREVIEW),
    ConnectorKind("vector", "sink", "Vector sink (lancedb)", Capabilities(durable=False), Maturity.EXPERIMENTAL),
)

SOURCES: dict[str, ConnectorKind] = {k.name: k for k in _KINDS if k.role == "source"}
SINKS: dict[str, ConnectorKind] = {k.name: k for k in _KINDS if k.role == "sink"}
