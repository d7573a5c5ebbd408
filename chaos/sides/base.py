"""The harness's side of a connector kind: what it needs set up, its ground truth, and its output
read back independently.

Each kind's entry in the connector table (`drivers.connectors`) names its harness side, a class
that takes the run's context. A source side prepares the input (a topic, files, a table), feeds
it, says when the pipeline has caught up, and reads back what the source really holds (the ground
truth). A sink side creates what the sink writes to and reads the committed output with the
format's official client (pyarrow, a read_committed consumer, delta-rs, pyiceberg, hudi-rs,
LanceDB), never with the driver's code; a two-phase sink that a reader can poll also offers a
watch for atomic visibility.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import pyarrow as pa

from chaos.env.environment import Environment
from chaos.experiment import Experiment
from drivers.connectors import SINKS, SOURCES
from drivers.sdk.connector import Settings, load
from drivers.sdk.history import History

if TYPE_CHECKING:
    from chaos.workload.producer import WorkloadOutcome, WorkloadProgress

VisibleIds = Callable[[], pa.Array]
"""Reads the ids a reader sees right now (empty while nothing is committed); may raise on a
transient read error, which the probe counts and retries at the next poll."""


@dataclass(frozen=True)
class RunContext:
    """What a connector's harness side works with: the experiment, the environment and the run."""

    experiment: Experiment
    env: Environment
    run_dir: Path
    history: History

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def lake(self) -> Path:
        """Where the run's lakehouse tables live."""
        return self.run_dir / "lake"


class SourceSide(Protocol):
    live_feed: bool
    """A producer feeds the source while the run goes on (else the input is all there from the start)."""
    partitioned: bool
    """Its ground truth has `partition` and `offset` columns, so the output can be checked as a prefix."""

    def prepare(self) -> None:
        """Create the input: a topic, input files, a table."""

    def settings(self) -> Settings:
        """The source driver's settings, for the job configuration."""

    def drive(self, progress: WorkloadProgress, stop: threading.Event) -> WorkloadOutcome | None:
        """Feed the workload while the run goes on (a producer), or mark it all there (a batch)."""

    def caught_up(self, status: dict[str, Any]) -> bool:
        """The coordinator's last committed checkpoint covers the whole input."""

    def committed(self, status: dict[str, Any] | None) -> int:
        """How many input records the last committed checkpoint covers, for the progress display."""

    def truth(self) -> pa.Table:
        """What the source really holds, read back independently: `id`, `key`, `checksum` at least."""

    def max_rate(self) -> float | None:
        """Records per second per worker for a source that would otherwise be read in a blink."""


@dataclass(frozen=True)
class OutputWatch:
    """How one sink's output is observed during the run and judged after it."""

    visible: VisibleIds
    """What a reader sees now: the probe calls it every poll."""
    units: Callable[[], pa.Table]
    """After the run: (checkpoint_id, id) of every unit that had to become visible at once."""
    close: Callable[[], None] = field(default=lambda: None)


class SinkSide(Protocol):
    watched: bool
    """A reader can poll its commits during the run: `watch` gives an OutputWatch."""
    local_output: bool
    """It writes its output as files in a local directory, `output`: one that a power cut's lost
    unfsynced writes (`lose_unfsynced`, through lazyfs) can strike. Absent: False."""
    polled: bool
    """Its output is the run's Kafka output topic (`chaos.sides.kafka.output_topic`), which a concurrent
    consumer reads as a queue all run long (`chaos.sides.kafka_polls`)."""

    def settings(self) -> Settings:
        """Create what the sink writes to; the sink driver's settings, for the job configuration."""

    def read(self) -> pa.Table:
        """The committed output, through the format's official reader."""

    def watch(self) -> OutputWatch | None:
        """The atomic-visibility watch of a two-phase sink whose commits a reader can poll, else None."""


def source_side_class(source: str) -> type[SourceSide]:
    return load(SOURCES[source].harness)


def sink_side_class(sink: str) -> type[SinkSide]:
    return load(SINKS[sink].harness)


def source_side(context: RunContext) -> SourceSide:
    return source_side_class(context.experiment.pipeline.source)(context)


def sink_side(context: RunContext) -> SinkSide:
    return sink_side_class(context.experiment.pipeline.sink)(context)


def ids_of(table: pa.Table) -> pa.Array:
    """A table's `id` column as one int64 array (empty for an empty table)."""
    return table.column("id").combine_chunks().cast(pa.int64()) if table.num_rows else pa.array([], pa.int64())


def empty_output() -> pa.Table:
    """What a reader of a sink that has committed nothing sees."""
    return pa.table({"id": pa.array([], pa.int64()), "key": pa.array([], pa.string()),
                     "payload": pa.array([], pa.string()), "checksum": pa.array([], pa.int64())})
