"""Experiment spec v1: the YAML a user writes, as strict pydantic models.

Unknown keys are errors (the loader adds a did-you-mean), durations accept `5`, `5s`, `500ms`
or `2m`, and each fault kind is its own model so an error names the exact field that is wrong.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from chaos import matrix
from chaos.spec.base import Duration, StrictModel
from chaos.spec.faults import CrashFault, Fault
from faults.nemesis import NemesisSpec, expand
from chaos.spec.targets import MAX_WORKERS, PROCESSES, known
from drivers.registry import SINKS, SOURCES

class PipelineSpec(StrictModel):
    source: str = "kafka"
    sink: str = "parquet"
    profile: Literal["in-memory", "single-node-durable", "distributed-durable"] = "single-node-durable"
    checkpoint_interval: Duration = 1.0
    workers: int = Field(1, ge=1, le=MAX_WORKERS)
    restart_delay: Duration = Field(1.0, description="how long the supervisor waits before restarting a crashed process")
    allowed_lateness: Duration | None = Field(
        None, description="route records further behind their split's event-time watermark to the late output")
    mutant: Literal["auto-commit", "reconnect-skip", "non-idempotent-commit", "truncating-widen",
                    "non-atomic-commit", "non-atomic-delta-commit", "drop-late"] | None = Field(
        None, description="a deliberately buggy variant, to prove the checkers catch it")

    @field_validator("source")
    @classmethod
    def _known_source(cls, name: str) -> str:
        return known(name, list(SOURCES), "source")

    @field_validator("sink")
    @classmethod
    def _known_sink(cls, name: str) -> str:
        return known(name, list(SINKS), "sink")

    @model_validator(mode="after")
    def _supported(self) -> "PipelineSpec":
        if self.checkpoint_interval <= 0:
            raise ValueError("checkpoint_interval must be greater than zero")
        mutated = {"auto-commit": ("source", ("kafka", "kafka-transactional")),
                   "reconnect-skip": ("source", ("kafka", "kafka-transactional")),
                   "non-idempotent-commit": ("sink", ("parquet-2pc",)),
                   "truncating-widen": ("sink", ("parquet-2pc",)),
                   "non-atomic-commit": ("sink", ("parquet-2pc",)),
                   "non-atomic-delta-commit": ("sink", ("delta-2pc",)),
                   "drop-late": ("sink", ("parquet-2pc",))}
        if self.mutant is not None:
            role, kinds = mutated[self.mutant]
            if getattr(self, role) not in kinds:
                raise ValueError(f"mutant {self.mutant} is a variant of the {' or '.join(kinds)} {role}")
        try:
            matrix.resolve(self.source, self.sink, self.profile)
        except matrix.Unsupported as e:
            raise ValueError(str(e)) from None
        return self

    @property
    def row(self) -> "matrix.Row":
        return matrix.resolve(self.source, self.sink, self.profile)[0]

    @property
    def guarantee(self) -> "matrix.Guarantee":
        """The effective guarantee: the weakest of the source, the sink and the profile."""
        return matrix.resolve(self.source, self.sink, self.profile)[1]


SCHEMA_CHANGE_SOURCES = ("kafka", "kafka-transactional", "parquet-batch", "iceberg-batch", "hudi-batch")
SCHEMA_CHANGE_SINKS = ("parquet", "parquet-2pc", "iceberg-batch", "iceberg-2pc", "hudi-2pc", "kafka-transactional")
"""Where the workload's mid-stream schema change can flow today. Not into Delta, since delta-rs cannot
widen a column (int32 to int64), and not from the in-memory stream, which generates one schema."""

LATE_ROUTING_SOURCES = ("kafka", "kafka-transactional")
"""Sources whose splits (partitions) carry the event-time watermarks that late routing needs."""


class WorkloadSpec(StrictModel):
    records: int = Field(gt=0, le=50_000_000)
    rate: float = Field(gt=0, description="records per second")
    keys: int = Field(100, gt=0)
    payload_size: int = Field(64, ge=8, le=1_000_000, description="payload bytes per record")
    partitions: int = Field(3, ge=1, le=64)
    schema_change_at: int | None = Field(
        None, ge=1, description="from this record on: `tag` dropped, `score` widened to int64, `region` added")
    late_every: int | None = Field(None, ge=2, description="every Nth record's event time lags by `lateness`")
    lateness: Duration = Field(0.0, description="how far behind the stream a late record's event time is")


class ExpectSpec(StrictModel):
    """What the checkers hold the run to. Left out, `no_loss` and `duplicates` follow the pipeline's
    effective guarantee: at least once requires no loss, effectively and exactly once forbid duplicates."""

    no_loss: bool | None = None
    duplicates: Literal["allow", "forbid"] | None = None
    no_phantoms: bool = True
    drain_timeout: Duration = 60.0
    recovery_bound: Duration = Field(30.0, description="progress must resume within this long after each heal")


class Experiment(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)
    description: str = ""
    seed: int = Field(ge=0, lt=2**63)
    pipeline: PipelineSpec = PipelineSpec()
    workload: WorkloadSpec
    faults: list[Fault] = []
    nemesis: NemesisSpec | None = Field(
        None, description="a randomized schedule drawn from the seed, added to `faults` when the file is loaded")
    expect: ExpectSpec = ExpectSpec()

    @model_validator(mode="after")
    def _expand_nemesis(self) -> "Experiment":
        """The same seed always draws the same schedule, so the expanded faults are the experiment."""
        if self.nemesis is not None:
            generated = expand(self.nemesis, self.seed, self.pipeline)
            object.__setattr__(self, "faults", [*self.faults, *generated])
            object.__setattr__(self, "nemesis", None)
        return self

    @property
    def requires_no_loss(self) -> bool:
        if self.expect.no_loss is not None:
            return self.expect.no_loss
        return self.pipeline.guarantee >= matrix.Guarantee.AT_LEAST_ONCE

    @property
    def forbids_duplicates(self) -> bool:
        if self.expect.duplicates is not None:
            return self.expect.duplicates == "forbid"
        return self.pipeline.guarantee >= matrix.Guarantee.EFFECTIVELY_ONCE

    @model_validator(mode="after")
    def _faults_fit(self) -> "Experiment":
        if self.pipeline.allowed_lateness is not None and self.pipeline.source not in LATE_ROUTING_SOURCES:
            raise ValueError("event-time late routing needs a source whose splits carry watermarks ("
                             f"{', '.join(LATE_ROUTING_SOURCES)}), not {self.pipeline.source}")
        change = self.workload.schema_change_at
        if change is not None:
            if change >= self.workload.records:
                raise ValueError(f"workload.schema_change_at={change} never happens: the workload produces "
                                 f"{self.workload.records} records")
            if self.pipeline.source not in SCHEMA_CHANGE_SOURCES or self.pipeline.sink not in SCHEMA_CHANGE_SINKS:
                raise ValueError(
                    f"a schema change runs through sources {', '.join(SCHEMA_CHANGE_SOURCES)} into sinks "
                    f"{', '.join(SCHEMA_CHANGE_SINKS)}; not {self.pipeline.source} -> {self.pipeline.sink}")
        processes = {"coordinator"} | {f"worker-{i}" for i in range(self.pipeline.workers)}
        for i, fault in enumerate(self.faults):
            if isinstance(fault, CrashFault):
                target = fault.process
            else:
                target = fault.target
                if fault.at_records is not None and fault.at_records >= self.workload.records:
                    raise ValueError(f"faults[{i}].at_records={fault.at_records} never fires: the workload "
                                     f"produces {self.workload.records} records")
            if target in PROCESSES and target not in processes:
                raise ValueError(f"faults[{i}] targets {target}, but the pipeline has {self.pipeline.workers} worker(s)")
            if target == "postgres" and self.pipeline.profile != "distributed-durable":
                raise ValueError(f"faults[{i}] targets postgres, which only the distributed-durable profile uses")
            if target == "coordinator-store" and self.pipeline.profile != "distributed-durable":
                raise ValueError(f"faults[{i}] targets coordinator-store, which only the distributed-durable "
                                 "profile has (its checkpoint store is PostgreSQL behind that link)")
            iceberg = "iceberg" in (self.pipeline.source.split("-")[0], self.pipeline.sink.split("-")[0])
            if target == "worker-catalog" and not (iceberg and self.pipeline.profile == "distributed-durable"):
                raise ValueError(f"faults[{i}] targets worker-catalog, which only an Iceberg pipeline with the "
                                 "distributed-durable profile has (its catalog is PostgreSQL behind that link)")
        return self

    def crash_points(self) -> dict[str, dict[str, int]]:
        """The armed crash points by process, as the runtime's job configuration wants them."""
        armed: dict[str, dict[str, int]] = {}
        for fault in self.faults:
            if isinstance(fault, CrashFault):
                armed.setdefault(fault.process, {})[fault.point] = fault.hit
        return armed
