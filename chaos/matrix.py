"""The delivery-guarantee matrix, derived from capability profiles and durability profiles.

A pipeline's effective guarantee is the weakest of what its source gives, what its sink gives,
and what its durability profile gives. The supported combinations are the rows below; a row's
listed guarantee is the effective one under the weakest profile the row allows. A plug-in kind
joins one row derived from its capabilities (`plugin_row`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from drivers.connectors import KINDS, SINKS, SOURCES, origin
from drivers.sdk.capabilities import Capabilities, Maturity
from drivers.sdk.connector import Connector

PROFILES = ("in-memory", "single-node-durable", "distributed-durable")


class Guarantee(IntEnum):
    BEST_EFFORT = 0
    AT_LEAST_ONCE = 1
    EFFECTIVELY_ONCE = 2
    EXACTLY_ONCE = 3

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


def source_guarantee(c: Capabilities) -> Guarantee:
    if not c.replayable:
        return Guarantee.BEST_EFFORT
    if c.transactional:
        return Guarantee.EXACTLY_ONCE
    if c.idempotent_commit:
        return Guarantee.EFFECTIVELY_ONCE
    return Guarantee.AT_LEAST_ONCE


def sink_guarantee(c: Capabilities) -> Guarantee:
    if not c.durable:
        return Guarantee.BEST_EFFORT
    if (c.two_phase or c.transactional) and c.idempotent_commit:
        return Guarantee.EXACTLY_ONCE
    return Guarantee.AT_LEAST_ONCE


def profile_guarantee(profile: str) -> Guarantee:
    """In-memory checkpoints die with the coordinator; a local store dies with the node, and with
    it the record of which prepared commits were made, so only an off-node store allows once-only."""
    return {
        "in-memory": Guarantee.BEST_EFFORT,
        "single-node-durable": Guarantee.AT_LEAST_ONCE,
        "distributed-durable": Guarantee.EXACTLY_ONCE,
    }[profile]


def effective_guarantee(source: Connector, sink: Connector, profile: str) -> Guarantee:
    return min(source_guarantee(source.capabilities), sink_guarantee(sink.capabilities), profile_guarantee(profile))


ANY = "any"


@dataclass(frozen=True)
class Row:
    source: str  # a source name, or ANY
    sink: str
    weakest_profile: str

    @property
    def profiles(self) -> tuple[str, ...]:
        return PROFILES[PROFILES.index(self.weakest_profile):]

    def matches(self, source: str, sink: str) -> bool:
        return self.source in (source, ANY) and self.sink == sink

    @property
    def guarantee(self) -> Guarantee:
        sources = SOURCES.values() if self.source == ANY else [SOURCES[self.source]]
        return min(effective_guarantee(s, SINKS[self.sink], self.weakest_profile) for s in sources)

    @property
    def maturity(self) -> Maturity:
        kinds = [SINKS[self.sink]] + ([] if self.source == ANY else [SOURCES[self.source]])
        order = list(Maturity)
        return max((k.maturity for k in kinds), key=order.index)

    @property
    def plugin(self) -> bool:
        """A row that a plug-in kind joins."""
        kinds = [SINKS[self.sink]] + ([] if self.source == ANY else [SOURCES[self.source]])
        return any(origin(k).plugin for k in kinds)

    def describe(self) -> str:
        profiles = "any profile" if self.weakest_profile == PROFILES[0] else " or ".join(self.profiles)
        return f"{self.source} -> {self.sink} ({profiles}): {self.guarantee.label}"


BUILT_IN_ROWS = (
    Row("parquet-batch", "parquet", "in-memory"),
    Row("parquet-batch", "parquet-2pc", "distributed-durable"),
    Row("kafka", "parquet", "single-node-durable"),
    Row("kafka-transactional", "parquet-2pc", "distributed-durable"),
    Row("kafka-transactional", "kafka-transactional", "distributed-durable"),
    Row("kafka-transactional", "iceberg-2pc", "distributed-durable"),
    Row("iceberg-batch", "iceberg-batch", "in-memory"),
    Row("delta-batch", "delta-batch", "in-memory"),
    Row("delta-batch", "delta-2pc", "distributed-durable"),
    Row("hudi-batch", "hudi-2pc", "distributed-durable"),
    Row("memory-stream", "memory", "in-memory"),
    Row(ANY, "vector", "in-memory"),
)

PARTNERS = {"sink": "kafka-transactional", "source": "parquet-2pc"}
"""The built-in kind a plug-in is paired with: the source, or the sink, that gives the most."""


def plugin_row(kind: Connector) -> Row:
    """The row a plug-in kind joins: paired with its partner (`PARTNERS`), at the weakest profile
    that gives the best guarantee the pair can reach, as our own rows are chosen."""
    partner = PARTNERS[kind.role]
    source, sink = (SOURCES[partner], kind) if kind.role == "sink" else (kind, SINKS[partner])
    best = max(effective_guarantee(source, sink, p) for p in PROFILES)
    weakest = next(p for p in PROFILES if effective_guarantee(source, sink, p) == best)
    return Row(source.name, sink.name, weakest)


ROWS = BUILT_IN_ROWS + tuple(plugin_row(k) for k in KINDS if origin(k).plugin)


class Unsupported(ValueError):
    """The combination is outside the matrix; the message names the nearest supported rows."""


def resolve(source: str, sink: str, profile: str) -> tuple[Row, Guarantee]:
    """The matrix row a pipeline falls in and its effective guarantee, or Unsupported."""
    for row in ROWS:
        if row.matches(source, sink) and profile in row.profiles:
            return row, effective_guarantee(SOURCES[source], SINKS[sink], profile)
    nearest = nearest_rows(source, sink)
    raise Unsupported(
        f"{source} -> {sink} with profile {profile} is not a supported combination; nearest supported: "
        + "; ".join(r.describe() for r in nearest)
    )


def nearest_rows(source: str, sink: str, limit: int = 3) -> list[Row]:
    """Rows that share the pair, then the sink, then the source."""
    def distance(row: Row) -> int:
        return (0 if row.matches(source, sink) else 2) + (0 if row.sink == sink else 1) + (0 if row.source == source else 1)
    return sorted(ROWS, key=distance)[:limit]
