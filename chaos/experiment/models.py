"""Experiment spec v1: the YAML a user writes, as strict pydantic models.

Unknown keys are errors (the loader adds a did-you-mean), durations accept `5`, `5s`, `500ms`
or `2m`, and each fault kind is its own model so an error names the exact field that is wrong.
"""

from __future__ import annotations

import dataclasses
import re
from string import Formatter
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from chaos import matrix
from chaos.experiment.cluster_rules import check_cluster
from chaos.experiment.consistency import describe, inconsistencies
from chaos.experiment.shape import KafkaShape
from drivers.connectors import SINKS, SOURCES, plugin_problem
from drivers.engines import COMMAND, COMMAND_SOURCES, ENGINE_CONNECTORS, ENGINES, NATIVE, PLACEHOLDERS
from faults.catalog import CrashFault, ElectFault, Fault
from faults.fields import Duration, StrictModel
from faults.nemesis import NemesisSpec
from faults.targets import MAX_WORKERS, known, suggest


def _loaded(kind: str) -> str:
    """`kind`, unless a plug-in that would provide it was left out: then why."""
    problem = plugin_problem(kind)
    if problem is not None and kind not in SOURCES and kind not in SINKS:
        raise ValueError(f"{kind!r} comes from a plug-in that could not be loaded: {problem}")
    return kind


def _placeholders(template: str) -> str:
    """`template` if every `{name}` in it is one the command engine fills in (`PLACEHOLDERS`)."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in Formatter().parse(template)
                  if name is not None]
    except ValueError as e:
        raise ValueError(f"{template!r}: {e} (write {{{{ and }}}} for literal braces)") from None
    for name, spec, conversion in fields:
        head, _, key = name.partition(".")
        if head not in PLACEHOLDERS or (head == "sink") != bool(key) or spec or conversion:
            raise ValueError(f"{template!r} names {{{name}}}, which is not a placeholder (placeholders: "
                             f"{', '.join(PLACEHOLDERS)}; the sink's settings as {{sink.KEY}})"
                             + suggest(head, list(PLACEHOLDERS)))
    return template


class CommandSpec(StrictModel):
    """One process of a `command` pipeline: the user's own program, supervised and faulted as ours are."""

    argv: list[str] = Field(min_length=1, description="the program and its arguments, with {placeholders} filled in")
    ready: str | None = Field(
        None, description="a regular expression: the process is ready once a line of its output matches it "
        "(left out: once it has started)")
    env: dict[str, str] = Field({}, description="environment variables added to the testbed's own, with {placeholders}")

    @field_validator("argv")
    @classmethod
    def _argv(cls, argv: list[str]) -> list[str]:
        return [_placeholders(arg) for arg in argv]

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        return {name: _placeholders(value) for name, value in env.items()}

    @field_validator("ready")
    @classmethod
    def _ready(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"{pattern!r} is not a regular expression: {e}") from None
        return pattern


class PipelineSpec(StrictModel):
    source: str = "kafka"
    sink: str = "parquet"
    profile: Literal["in-memory", "single-node-durable", "distributed-durable"] = "single-node-durable"
    checkpoint_interval: Duration = 1.0
    workers: int = Field(1, ge=1, le=MAX_WORKERS)
    restart_delay: Duration = Field(1.0, description="how long the supervisor waits before restarting a crashed process")
    allowed_lateness: Duration | None = Field(
        None, description="route records further behind their split's event-time watermark to the late output")
    mutant: str | None = Field(
        None, description="a deliberately buggy variant of the source's or the sink's kind, to prove the checkers catch it")
    engine: str = Field(NATIVE, description="what runs the pipeline: native (our runtime), kafka-connect or command")
    connector: str | None = Field(
        None, description="with kafka-connect: the engine's connector under test, e.g. iceberg-sink")
    commands: list[CommandSpec] = Field(
        [], max_length=MAX_WORKERS, description="with the command engine: the pipeline's processes, "
        "command-0, command-1, ... in this order")

    @model_validator(mode="before")
    @classmethod
    def _one_worker_per_command(cls, data: object) -> object:
        """A command pipeline's processes are its commands: `workers` counts them."""
        if isinstance(data, dict) and data.get("engine") == COMMAND and isinstance(data.get("commands"), list):
            return {"workers": len(data["commands"]) or 1, **data}
        return data

    @field_validator("source")
    @classmethod
    def _known_source(cls, name: str) -> str:
        return known(_loaded(name), list(SOURCES), "source")

    @field_validator("sink")
    @classmethod
    def _known_sink(cls, name: str) -> str:
        return known(_loaded(name), list(SINKS), "sink")

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, name: str) -> str:
        return known(name, list(ENGINES), "engine")

    @model_validator(mode="after")
    def _supported(self) -> "PipelineSpec":
        if self.checkpoint_interval <= 0:
            raise ValueError("checkpoint_interval must be greater than zero")
        if self.engine == COMMAND:
            self._command()
        elif self.engine != NATIVE:
            self._black_box()
        elif self.connector is not None:
            raise ValueError("`connector` names a black-box engine's connector: set `engine` too (kafka-connect)")
        if self.commands and self.engine != COMMAND:
            raise ValueError("`commands` are the command engine's processes: set `engine: command` too")
        if self.mutant is not None:
            source, sink = SOURCES[self.source], SINKS[self.sink]
            if source.mutant(self.mutant) is None and sink.mutant(self.mutant) is None:
                owners = [k for k in [*SOURCES.values(), *SINKS.values()] if k.mutant(self.mutant) is not None]
                if not owners:
                    known_mutants = sorted({m.name for k in [*SOURCES.values(), *SINKS.values()] for m in k.mutants})
                    raise ValueError(f"unknown mutant {self.mutant!r} (mutants: {', '.join(known_mutants)})"
                                     f"{suggest(self.mutant, known_mutants)}")
                raise ValueError(f"mutant {self.mutant} is a variant of the "
                                 f"{' or '.join(k.name for k in owners)} {owners[0].role}")
        try:
            matrix.resolve(self.source, self.sink, self.profile)
        except matrix.Unsupported as e:
            raise ValueError(str(e)) from None
        return self

    def _black_box(self) -> None:
        """A black-box engine runs one of its connectors, which implements one row of the matrix."""
        offered = [c.name for c in ENGINE_CONNECTORS.values() if c.engine == self.engine]
        if self.connector is None:
            raise ValueError(f"engine {self.engine} needs `connector`: one of {', '.join(offered)}")
        connector = ENGINE_CONNECTORS.get(self.connector)
        if connector is None or connector.engine != self.engine:
            raise ValueError(f"unknown {self.engine} connector {self.connector!r} (known: {', '.join(offered)})"
                             f"{suggest(self.connector, offered)}")
        if self.source not in connector.sources or self.sink != connector.sink:
            raise ValueError(f"{connector.name} reads {' or '.join(connector.sources)} and writes {connector.sink}: "
                             f"set source and sink to match (got {self.source} -> {self.sink})")
        if self.mutant is not None:
            raise ValueError(f"a black-box engine has no seeded bugs: remove `mutant` ({self.mutant})")
        if self.profile != "distributed-durable":
            raise ValueError(f"{connector.name} keeps its state in Kafka and its catalog in PostgreSQL: "
                             "profile must be distributed-durable")

    def _command(self) -> None:
        """The user's own pipeline: it reads the Kafka input and writes one of the sink kinds' outputs,
        which the harness reads back as it reads ours."""
        if not self.commands:
            raise ValueError("engine command needs `commands`: the processes that run your pipeline, each an argv")
        if self.workers != len(self.commands):
            raise ValueError("with the command engine the pipeline has one process per command "
                             f"({len(self.commands)}): leave out `workers` (got {self.workers})")
        if self.source not in COMMAND_SOURCES:
            raise ValueError(f"a command pipeline reads {' or '.join(COMMAND_SOURCES)}, whose consumer group's offsets "
                             f"show the harness how far it got (got source {self.source})")
        if self.connector is not None:
            raise ValueError("`connector` names a kafka-connect connector: remove it with the command engine")
        if self.mutant is not None:
            raise ValueError(f"a command pipeline has no seeded bugs of ours: remove `mutant` ({self.mutant})")

    @property
    def row(self) -> "matrix.Row":
        return matrix.resolve(self.source, self.sink, self.profile)[0]

    @property
    def guarantee(self) -> "matrix.Guarantee":
        """The effective guarantee: the weakest of the source, the sink and the profile."""
        return matrix.resolve(self.source, self.sink, self.profile)[1]


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
    prefill: bool = Field(
        False, description="produce the whole workload before the pipeline starts, so that the job starts on a "
        "full topic and sets its own pace; faults' `at` then counts from the pipeline's start")


class ExpectSpec(StrictModel):
    """What the checkers hold the run to. Left out, `no_loss` and `duplicates` follow the pipeline's
    effective guarantee: at least once requires no loss, effectively and exactly once forbid duplicates."""

    no_loss: bool | None = None
    duplicates: Literal["allow", "forbid"] | None = None
    no_phantoms: bool = True
    drain_timeout: Duration = 60.0
    recovery_bound: Duration = Field(30.0, description="progress must resume within this long after each heal")


class KafkaEnvironmentSpec(StrictModel):
    brokers: Literal[1, 3] = Field(
        1, description="1 (the default), or a cluster of 3 nodes, kafka-0..kafka-2, with a link for every "
        "directed pair of nodes")
    controllers: Literal["combined", "separate"] = Field(
        "combined", description="on a cluster: a controller inside each node (the default), or three controller "
        "processes of their own, controller-0..controller-2, so that the quorum can be isolated on its own")
    min_insync_replicas: int | None = Field(
        None, ge=1, le=3, description="on a cluster: the `min.insync.replicas` of the topics the experiment "
        "creates (default: the cluster's, 2); 1 lets a leader alone acknowledge acks=all writes")

    @property
    def shape(self) -> KafkaShape:
        """The environment this experiment runs on."""
        return KafkaShape(self.brokers, self.brokers > 1 and self.controllers == "separate")


class EnvironmentSpec(StrictModel):
    """What the experiment needs of the environment beyond the default one broker."""

    kafka: KafkaEnvironmentSpec = KafkaEnvironmentSpec()
    backend: Literal["native", "docker"] | None = Field(
        None, description="where Kafka, Toxiproxy and PostgreSQL run: `native` (processes of this machine) or `docker` "
        "(containers of CHAOS_KAFKA_IMAGE, CHAOS_TOXIPROXY_IMAGE and CHAOS_POSTGRES_IMAGE, else the official images; "
        "one broker); unset, the shared environment's (`chaos env up [--backend docker]`), else native")

    @property
    def shape(self) -> KafkaShape:
        """The environment this experiment runs on: its Kafka, and where that runs."""
        return dataclasses.replace(self.kafka.shape, backend=self.backend)


NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,79}")


class Experiment(StrictModel):
    name: str = Field(description="names the run directory: lower-case letters, digits, '.', '_' and '-'")
    description: str = ""
    seed: int = Field(ge=0, lt=2**63)
    pipeline: PipelineSpec = PipelineSpec()
    workload: WorkloadSpec
    faults: list[Fault] = []
    nemesis: NemesisSpec | None = Field(
        None, description="a randomized schedule drawn from the seed, added to `faults` when the file is loaded")
    expect: ExpectSpec = ExpectSpec()
    environment: EnvironmentSpec = EnvironmentSpec()

    @field_validator("name")
    @classmethod
    def _name_rule(cls, name: str) -> str:
        if not NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a name this testbed takes: it names a directory, so it must be "
                             "1 to 80 lower-case letters, digits, '.', '_' or '-', starting with a letter or a digit"
                             + (f" (did you mean {name.lower()!r}?)" if NAME.fullmatch(name.lower()) else ""))
        return name

    @model_validator(mode="after")
    def _cluster_targets(self) -> "Experiment":
        check_cluster(self)
        return self

    @property
    def requires_no_loss(self) -> bool:
        if self.expect.no_loss is not None:
            return self.expect.no_loss
        return self.pipeline.guarantee >= matrix.Guarantee.AT_LEAST_ONCE

    @property
    def expected_loss(self) -> str | None:
        """Why acknowledged writes may be lost in this run by design (an unclean election), if they may."""
        unclean = any(isinstance(fault, ElectFault) and fault.election == "unclean" for fault in self.faults)
        return "an unclean leader election" if unclean else None

    @property
    def forbids_duplicates(self) -> bool:
        if self.expect.duplicates is not None:
            return self.expect.duplicates == "forbid"
        return self.pipeline.guarantee >= matrix.Guarantee.EFFECTIVELY_ONCE

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "Experiment":
        """The checks across sections; the loader runs them itself, to place each at its line."""
        if not (info.context or {}).get("consistency_checked_by_caller"):
            problems = inconsistencies(self.pipeline, self.workload, enumerate(self.faults), self.expect)
            if problems:
                raise ValueError("; ".join(f"{describe(where)}: {message}" for where, message in problems))
        return self

    def crash_points(self) -> dict[str, dict[str, int]]:
        """The armed crash points by process, as the runtime's job configuration wants them."""
        armed: dict[str, dict[str, int]] = {}
        for fault in self.faults:
            if isinstance(fault, CrashFault):
                armed.setdefault(fault.process, {})[fault.point] = fault.hit
        return armed

