"""Fault entries of an experiment: one model per kind, so an error names the exact field.

Every scheduled fault has one trigger (`at` a time after the workload starts, `after_ready` a time
after the pipeline is ready, `at_records` a record count, `at_commits` a commit count, or
`after_crash` a crash point), a `target` and a `duration`, after which it is healed. Network faults target a link and map onto Toxiproxy
toxics; process faults target a supervised process or one of the environment's services (`kafka`,
`postgres`). A `crash` fault is armed from the start instead: it fires when its process passes the
named point for the `hit`-th time.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, field_validator, model_validator

from drivers.sdk.crashpoints import POINTS, role_of
from drivers.sdk.links import NETWORK_LINKS
from faults.fields import Duration, SignedDuration, StrictModel
from faults.targets import (
    CONTROLLERS,
    LEADER,
    MAX_WORKERS,
    NODES,
    PAIR_LINKS,
    PROCESSES,
    ROLES,
    SERVICES,
    cluster_role,
    known,
    side_of_split,
)

Direction = Literal["upstream", "downstream"]


class FaultBase(StrictModel):
    at: Duration | None = Field(None, description="seconds after the workload starts")
    at_records: int | None = Field(None, ge=0, description="once this many records were produced")
    at_commits: int | None = Field(None, ge=1, description="once this many checkpoints were committed")
    after_crash: str | None = Field(None, description="once this crash point has fired")
    after_ready: Duration | None = Field(
        None, description="this long after the pipeline is ready: every process joined, the workers consuming")
    target: str
    duration: Duration

    @field_validator("after_crash")
    @classmethod
    def _known_point(cls, point: str | None) -> str | None:
        return None if point is None else known(point, POINTS, "crash point")

    @model_validator(mode="after")
    def _one_trigger(self) -> "FaultBase":
        triggers = [self.at, self.at_records, self.at_commits, self.after_crash, self.after_ready]
        if sum(t is not None for t in triggers) != 1:
            raise ValueError("give exactly one trigger: `at` (a time), `at_records` (a record count), "
                             "`at_commits` (a commit count), `after_crash` (a crash point) or `after_ready` "
                             "(a time after the pipeline is ready)")
        return self


class NetworkFault(FaultBase):
    @field_validator("target")
    @classmethod
    def _known_link(cls, target: str) -> str:
        return known(target, NETWORK_LINKS + PAIR_LINKS, "link")


class DownFault(NetworkFault):
    """The link's proxy is disabled: connections are cut and new ones refused."""

    kind: Literal["down"]


class PartitionFault(NetworkFault):
    """Traffic is silently dropped (a blackhole), in both directions or one."""

    kind: Literal["partition"]
    direction: Literal["both", "upstream", "downstream"] = "both"


class ToxicFault(NetworkFault):
    """A Toxiproxy toxic on one direction of a link, applied to a `toxicity` share of connections."""

    toxic_type: ClassVar[str]
    direction: Direction = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)

    def toxic_attributes(self) -> dict[str, Any]:
        raise NotImplementedError


class LatencyFault(ToxicFault):
    toxic_type = "latency"
    kind: Literal["latency"]
    latency_ms: int = Field(ge=0, le=600_000)
    jitter_ms: int = Field(0, ge=0, le=600_000)

    def toxic_attributes(self) -> dict[str, Any]:
        return {"latency": self.latency_ms, "jitter": self.jitter_ms}


class BandwidthFault(ToxicFault):
    toxic_type = "bandwidth"
    kind: Literal["bandwidth"]
    rate_kbps: int = Field(ge=0, description="kilobytes per second")

    def toxic_attributes(self) -> dict[str, Any]:
        return {"rate": self.rate_kbps}


class SlowCloseFault(ToxicFault):
    toxic_type = "slow_close"
    kind: Literal["slow_close"]
    delay_ms: int = Field(ge=0)

    def toxic_attributes(self) -> dict[str, Any]:
        return {"delay": self.delay_ms}


class TimeoutFault(ToxicFault):
    """Data stops, and the connection is closed after `timeout_ms` (0: held open forever)."""

    toxic_type = "timeout"
    kind: Literal["timeout"]
    timeout_ms: int = Field(ge=0)

    def toxic_attributes(self) -> dict[str, Any]:
        return {"timeout": self.timeout_ms}


class ResetPeerFault(ToxicFault):
    """The connection is reset (TCP RST) after `timeout_ms`."""

    toxic_type = "reset_peer"
    kind: Literal["reset_peer"]
    timeout_ms: int = Field(0, ge=0)

    def toxic_attributes(self) -> dict[str, Any]:
        return {"timeout": self.timeout_ms}


class SlicerFault(ToxicFault):
    """Data is cut into small pieces, with an optional delay between them."""

    toxic_type = "slicer"
    kind: Literal["slicer"]
    average_size: int = Field(64, ge=1)
    size_variation: int = Field(32, ge=0)
    delay_us: int = Field(0, ge=0)

    def toxic_attributes(self) -> dict[str, Any]:
        return {"average_size": self.average_size, "size_variation": self.size_variation, "delay": self.delay_us}


class LimitDataFault(ToxicFault):
    """The connection is closed once `bytes` have passed."""

    toxic_type = "limit_data"
    kind: Literal["limit_data"]
    bytes: int = Field(ge=0)

    def toxic_attributes(self) -> dict[str, Any]:
        return {"bytes": self.bytes}


class ProcessFault(FaultBase):
    @field_validator("target")
    @classmethod
    def _known_process(cls, target: str) -> str:
        return target if cluster_role(target) else known(target, PROCESSES + ROLES + SERVICES + NODES + CONTROLLERS,
                                                          "process")


class KillFault(ProcessFault):
    """SIGKILL the process (a service: its whole process tree); it is restarted after `duration`
    (a pipeline process by the supervisor, a service on its data by the harness)."""

    kind: Literal["kill"]


class TerminateFault(ProcessFault):
    """SIGTERM the process (a graceful stop; PostgreSQL gets its fast shutdown); it is restarted
    after `duration`, as for `kill`."""

    kind: Literal["terminate"]


class PauseFault(ProcessFault):
    """SIGSTOP the process group, and SIGCONT it after `duration`: a long GC pause or a frozen VM."""

    kind: Literal["pause"]


class ClusterFault(FaultBase):
    """A fault on a three-broker cluster as a whole: the links between its nodes, its restarts, its elections.
    A clean or hard bounce of one node is `terminate` or `kill` with `duration: 0`."""


class IsolateFault(ClusterFault):
    """Every link between one side of the cluster and the rest blackholed. The side is one node or
    role (`kafka-1`, `controller-leader`: with three nodes, the majority/minority split) or a list
    (`kafka-0,kafka-1`). `direction: outbound` cuts only the side's own connections to the rest (a
    one-way split), `inbound` only theirs to it; `links` narrows it to the quorum's (`controller`)
    or the replicas' fetches (`replication`). Clients still reach every node."""

    kind: Literal["isolate"]
    direction: Literal["both", "outbound", "inbound"] = "both"
    links: Literal["all", "replication", "controller"] = "all"

    @field_validator("target")
    @classmethod
    def _a_side(cls, target: str) -> str:
        side_of_split(target)
        return target


class RollingRestartFault(ClusterFault):
    """Each node in turn stopped cleanly (`hard`: SIGKILLed) and started again on its data, the next
    one only once every partition has its full ISR again. The fault lasts at least `duration`; its
    heal waits for the roll to end."""

    kind: Literal["rolling_restart"]
    target: Literal["cluster"] = "cluster"
    hard: bool = False
    duration: Duration = 0.0


class ElectFault(ClusterFault):
    """A leader election on a partition of the input (`leader:input/<p>`) through the Admin API.
    `preferred` hands leadership back to the partition's first replica: a leadership transfer when a
    failover moved it. `unclean` lets an out-of-sync replica lead a partition that has no leader in
    sync, and may lose acknowledged writes: an experiment opts in with `expect.no_loss: false`."""

    kind: Literal["elect"]
    election: Literal["preferred", "unclean"] = "preferred"
    duration: Duration = 0.0

    @field_validator("target")
    @classmethod
    def _a_partition(cls, target: str) -> str:
        if LEADER.fullmatch(target) is None:
            raise ValueError(f"an election is held for a partition of the input: leader:input or "
                             f"leader:input/<partition>, not {target!r}")
        return target


class DiskFault(FaultBase):
    """The sink's file writes on `target` (a worker, or `*` for all) fail with EIO or ENOSPC, or stall."""

    kind: Literal["disk"]
    mode: Literal["eio", "enospc", "stall"]
    stall_s: float = Field(5.0, ge=0, le=30)

    @field_validator("target")
    @classmethod
    def _known_worker(cls, target: str) -> str:
        return target if target == "*" else known(target, PROCESSES, "process")


class CorruptFault(FaultBase):
    """A committed data file of the sink's output is damaged in place: one bit flipped in a column's
    data (`bitflip`: a bad sector, a bad cable), or the file cut to half its length (`truncate`: a
    write the storage acknowledged and then lost). Media do not heal: the damage stays, and
    `duration` is 0. The checkers must name it, as a record that is not what was produced
    (no-phantoms) or as an output that cannot be read (readable-output), never pass it."""

    kind: Literal["corrupt"]
    target: Literal["output"] = "output"
    mode: Literal["bitflip", "truncate"]
    duration: Duration = Field(0.0, le=0, description="always 0: a damaged file stays damaged")


class LoseUnfsyncedFault(FaultBase):
    """The pipeline's machine loses power, as Jepsen's lazyfs has it: every pipeline process is
    killed at once, and every write to the sink's output that was not fsynced is lost with the page
    cache. The names stay: a file renamed before its data was fsynced comes back short or empty.
    The processes start again after `duration`. The sink's output is served for the whole run by a
    FUSE filesystem that holds written data until fsync (`chaos/env/lazyfs.py`)."""

    kind: Literal["lose_unfsynced"]
    target: Literal["pipeline"] = "pipeline"


CLOCK_TARGETS = ("coordinator",) + tuple(f"worker-{i}" for i in range(MAX_WORKERS)) + ("kafka",) + NODES + CONTROLLERS
"""The processes whose wall clock a clock fault moves, started with the clock shim: our runtime's,
the single broker, and a cluster's nodes and controllers (or a role one of them plays)."""
MAX_CLOCK_OFFSET = 30 * 86400.0
"""Thirty days either way: far enough for any timeout, certificate or retention, near enough to read."""


class ClockFault(FaultBase):
    """The target's wall clock is wrong, as an NTP step or a drifting oscillator makes it; its
    monotonic clock keeps true, as the kernel keeps it. `jump` steps it by `offset` at once and back
    at the heal; `skew` lets it drift from true to `offset` evenly over `duration`, then steps it
    back; `strobe` flips it between `offset` and true every `period`, as Jepsen's clock nemesis
    does. Everything in the process that reads the time sees it: the runtime, the format libraries
    (a Delta commit's `timestamp`, an Iceberg snapshot's `timestamp-ms`) and the Kafka client."""

    kind: Literal["clock"]
    mode: Literal["jump", "skew", "strobe"]
    offset: SignedDuration = Field(description="how far the clock is off: `-30s` runs behind, `2m` ahead")
    period: Duration | None = Field(None, ge=0.1, le=60, description="strobe only: how long each flip holds (0.5s)")

    @field_validator("target")
    @classmethod
    def _a_runtime_process(cls, target: str) -> str:
        return target if cluster_role(target) else known(target, CLOCK_TARGETS, "process")

    @field_validator("offset")
    @classmethod
    def _bounded(cls, offset: float) -> float:
        if offset == 0 or abs(offset) > MAX_CLOCK_OFFSET:
            raise ValueError(f"an offset moves the clock: give one between 1ms and {MAX_CLOCK_OFFSET / 86400:g} "
                             f"days either way (a minus sign runs it behind), not {offset:g}s")
        return offset

    @model_validator(mode="after")
    def _lasts(self) -> "ClockFault":
        if self.duration <= 0:
            raise ValueError("a clock fault lasts a while: give a duration above 0")
        if self.mode != "strobe" and self.period is not None:
            raise ValueError(f"period is for a strobe, not for a {self.mode}")
        return self

    @property
    def flip_every(self) -> float:
        """A strobe's period: how long the clock stays off, then true, then off again."""
        return self.period if self.period is not None else 0.5


class CrashFault(StrictModel):
    """Arm a named crash point: the process exits at once on the `hit`-th time it passes the point,
    and its supervisor restarts it after the pipeline's `restart_delay`."""

    kind: Literal["crash"]
    point: str
    hit: int = Field(1, ge=1)
    target: str | None = Field(None, description="default: the coordinator for coordinator.* points, else worker-0")

    @field_validator("point")
    @classmethod
    def _known_point(cls, point: str) -> str:
        return known(point, POINTS, "crash point")

    @field_validator("target")
    @classmethod
    def _known_process(cls, target: str | None) -> str | None:
        return None if target is None else known(target, PROCESSES, "process")

    @model_validator(mode="after")
    def _role_matches(self) -> "CrashFault":
        if (role_of(self.point) == "coordinator") != (self.process == "coordinator"):
            raise ValueError(f"crash point {self.point} runs in the {role_of(self.point)}, not in {self.process}")
        return self

    @property
    def process(self) -> str:
        return self.target or ("coordinator" if role_of(self.point) == "coordinator" else "worker-0")


FAULT_MODELS = (DownFault, PartitionFault, LatencyFault, BandwidthFault, SlowCloseFault, TimeoutFault,
                ResetPeerFault, SlicerFault, LimitDataFault, KillFault, TerminateFault, PauseFault, IsolateFault,
                RollingRestartFault, ElectFault, DiskFault, CorruptFault, ClockFault, LoseUnfsyncedFault,
                CrashFault)
Fault = Annotated[Union[FAULT_MODELS], Field(discriminator="kind")]  # type: ignore[valid-type]
FAULT_KINDS = tuple(typing.get_args(m.model_fields["kind"].annotation)[0] for m in FAULT_MODELS)
