"""A randomized fault schedule driven only by a seed: a nemesis in the Jepsen sense.

A `NemesisSpec` says which fault kinds to draw, on which targets, in which time window, how often
and for how long. `generate` turns it into a concrete list of the ordinary fault models from
`faults.catalog`, each with `at`, a `target`, a `duration` and kind-specific parameters, so the
result runs through the same `FaultSchedule` as a hand-written schedule and can be written into the
run directory (and replayed) as plain YAML.

Everything comes from one `random.Random` seeded from the seed: no global random state and no wall
clock, so the same seed gives exactly the same schedule. Times are whole milliseconds.

The schedule keeps three promises:
- every fault is injected and healed inside the window: `start <= after_ready` and
  `after_ready + duration <= until`, counted from the moment the pipeline is ready (every process
  joined), so that no fault is spent on workers that are still starting;
- at most `max_concurrent` faults are active at once;
- a target never has two faults at once, and is left alone for `SETTLE` seconds after a heal, so a
  heal and the next injection on that target never land in the same tick of the scheduler (where a
  `down` healed after the next `down` was injected would silently cancel it).

Reducing a failing schedule to a small one is `faults.reduce` (the candidates) and `chaos shrink`.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any, Iterable, Sequence

from pydantic import Field, field_validator, model_validator

from drivers.sdk.links import NETWORK_LINKS
from faults.catalog import FAULT_KINDS, FAULT_MODELS, CrashFault, Fault, NetworkFault, ProcessFault, ToxicFault
from faults.fields import Duration, StrictModel
from faults.targets import CONTROLLERS, NODES, PAIR_LINKS, PROCESSES, known

LINKS = NETWORK_LINKS + PAIR_LINKS
"""Every link a nemesis may draw: the pipeline's, and on a cluster the links between its nodes."""
TARGET_PROCESSES = PROCESSES + NODES + CONTROLLERS
"""Every process a nemesis may draw: the pipeline's, and on a cluster its nodes (and controllers)."""

_MODELS: dict[str, type] = dict(zip(FAULT_KINDS, FAULT_MODELS))
NETWORK_KINDS = tuple(k for k, m in _MODELS.items() if issubclass(m, NetworkFault))
"""Kinds that target a link: down, partition and the Toxiproxy toxics."""
PROCESS_KINDS = tuple(k for k, m in _MODELS.items() if issubclass(m, ProcessFault))
"""Kinds that target a supervised process: kill, terminate, pause."""
SCHEDULABLE_KINDS = NETWORK_KINDS + PROCESS_KINDS
"""Every kind a nemesis may draw. `crash` is not one: it is armed at a named point, not scheduled."""

DEFAULT_KINDS = ("partition", "down", "latency", "reset_peer", "kill", "pause")

SETTLE = 0.5
"""Seconds a target is left alone after a heal before its next fault, and before a healed fault's
slot counts as free again for `max_concurrent`."""


class NemesisSpec(StrictModel):
    """A randomized fault schedule, as an experiment file gives it."""

    seed: int | None = Field(None, description="default: derived from the experiment's seed")
    kinds: list[str] = Field(default_factory=lambda: list(DEFAULT_KINDS), min_length=1,
                             description="the fault kinds to draw from, each equally likely")
    targets: list[str] | None = Field(None, min_length=1,
                                      description="default: every link and process of the experiment")
    start: Duration = Field(1.0, description="no fault before this many seconds after the pipeline is ready")
    until: Duration = Field(description="every fault has healed by this many seconds after the pipeline is ready")
    interval: Duration = Field(3.0, description="mean gap between faults (exponentially distributed)")
    duration_min: Duration = 0.5
    duration_max: Duration = 4.0
    max_concurrent: int = Field(2, ge=1, description="faults active at once, each on its own target")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        for kind in kinds:
            if kind == "crash":
                raise ValueError("crash faults are armed at a named point, not scheduled by time: list them "
                                 "under `faults` instead")
            if kind in FAULT_KINDS and kind not in SCHEDULABLE_KINDS:
                raise ValueError(f"the nemesis does not draw {kind!r} faults: they need parameters it cannot "
                                 f"choose for you; list them under `faults`. It draws: {', '.join(SCHEDULABLE_KINDS)}")
            known(kind, SCHEDULABLE_KINDS, "fault kind")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"kinds lists a kind twice: {kinds}")
        return kinds

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, targets: list[str] | None) -> list[str] | None:
        if targets is not None:
            for target in targets:
                known(target, LINKS + TARGET_PROCESSES, "target")
            if len(set(targets)) != len(targets):
                raise ValueError(f"targets lists a target twice: {targets}")
        return targets

    @model_validator(mode="after")
    def _consistent(self) -> "NemesisSpec":
        if self.interval <= 0:
            raise ValueError("interval must be greater than zero")
        if self.duration_min > self.duration_max:
            raise ValueError(f"duration_min ({self.duration_min}s) is greater than duration_max ({self.duration_max}s)")
        if self.until - self.start < self.duration_min:
            raise ValueError(f"the window from start ({self.start}s) to until ({self.until}s) is shorter than "
                             f"duration_min ({self.duration_min}s): no fault fits")
        if self.targets is not None:
            _pools(self.kinds, self.targets, LINKS, TARGET_PROCESSES)
        return self


def resolved_seed(spec: NemesisSpec, seed: int) -> int:
    """The seed the schedule is drawn from: `spec.seed`, or one derived from the experiment's seed.

    The derivation hashes the experiment seed, so the schedule is not correlated with the workload,
    which draws its records from `random.Random(seed)` itself.
    """
    if spec.seed is not None:
        return spec.seed
    digest = hashlib.sha256(f"chaos.nemesis:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def generate(spec: NemesisSpec, seed: int, links: Sequence[str], processes: Sequence[str]) -> list[Fault]:
    """A concrete fault schedule for `spec`, sorted by `at`; the same inputs always give the same list.

    `seed` is the experiment's seed (used only when `spec.seed` is None). `links` and `processes`
    are the targets the experiment really has (`chaos.experiment.topology`); `spec.targets`, when given,
    must be among them. Raises ValueError for an unknown kind, or a target that is not a link or
    process of the experiment that one of the kinds can hit.
    """
    links = [known(link, LINKS, "link") for link in links]
    processes = [known(name, TARGET_PROCESSES, "process") for name in processes]
    for kind in spec.kinds:
        known(kind, SCHEDULABLE_KINDS, "fault kind")
    pools = _pools(spec.kinds, spec.targets, links, processes)

    rng = random.Random(resolved_seed(spec, seed))
    start, until = _ms_up(spec.start), _ms_down(spec.until)
    shortest, longest = _ms_up(spec.duration_min), _ms_down(spec.duration_max)
    settle = _ms_up(SETTLE)
    mean_gap = spec.interval * 1000.0

    faults: list[Fault] = []
    ends: list[int] = []  # heal times of the faults that still hold a concurrency slot
    free_at: dict[str, int] = {}  # per target: the first time it may be faulted again
    clock = float(start)
    while True:
        clock += rng.expovariate(1.0 / mean_gap)
        at = math.ceil(clock)
        if at + shortest > until:
            break
        kind = rng.choice(spec.kinds)
        ends = [end for end in ends if end + settle > at]
        if len(ends) >= spec.max_concurrent:
            continue
        free = [t for t in pools[kind] if free_at.get(t, start) <= at]
        if not free:
            continue
        target = rng.choice(free)
        duration = rng.randint(shortest, min(longest, until - at))
        fields = {"kind": kind, "after_ready": at / 1000, "target": target, "duration": duration / 1000,
                  **_parameters(kind, rng)}
        faults.append(_MODELS[kind].model_validate(fields))
        ends.append(at + duration)
        free_at[target] = at + duration + settle
    faults.sort(key=lambda f: f.after_ready)
    return faults


def describe(faults: Sequence[Fault]) -> str:
    """The schedule as a short table, one line per fault, for a person reading the run directory."""
    if not faults:
        return "(no faults)\n"
    rows = [("#", "at", "heal", "kind", "target", "parameters")]
    for i, fault in enumerate(faults):
        if isinstance(fault, CrashFault):
            at, heal = f"armed, hit {fault.hit}", "-"
        elif fault.at is not None:
            at, heal = f"{fault.at:.3f}s", f"{fault.at + fault.duration:.3f}s"
        elif fault.after_ready is not None:
            at, heal = f"ready+{fault.after_ready:.3f}s", f"ready+{fault.after_ready + fault.duration:.3f}s"
        else:
            at, heal = trigger_text(fault), f"+{fault.duration:.3f}s"
        target = fault.process if isinstance(fault, CrashFault) else fault.target
        rows.append((str(i), at, heal, fault.kind, target, _parameter_text(fault)))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [row[0].rjust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2])]
        cells += [cell.ljust(width) for cell, width in zip(row[3:5], widths[3:5])]
        lines.append("  ".join(cells + [row[5]]).rstrip())
    return "\n".join(lines) + "\n"


def trigger_text(fault: Fault) -> str:
    """When a scheduled fault fires, in a few words, whichever trigger it has."""
    if fault.at is not None:
        return f"{fault.at:.3f}s"
    if fault.after_ready is not None:
        return f"ready+{fault.after_ready:.3f}s"
    if fault.at_records is not None:
        return f"at record {fault.at_records}"
    if fault.at_commits is not None:
        return f"at commit {fault.at_commits}"
    return f"after crash {fault.after_crash}"


def _pools(kinds: Iterable[str], targets: Sequence[str] | None, links: Sequence[str],
           processes: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """For each kind, the targets it may hit; ValueError if a kind or a given target has none."""
    kinds = list(kinds)
    if targets is None:
        pools = {k: tuple(links if k in NETWORK_KINDS else processes) for k in kinds}
    else:
        for target in targets:
            if target in LINKS:
                known(target, links, "link")
            elif target in TARGET_PROCESSES:
                known(target, processes, "process")
            else:
                raise ValueError(f"target {target!r} is neither a link ({', '.join(links)}) nor a process "
                                 f"({', '.join(processes)})")
        pools = {k: tuple(t for t in targets if t in (links if k in NETWORK_KINDS else processes)) for k in kinds}
        for target in targets:
            if not any(target in pool for pool in pools.values()):
                what, fitting = ("link", NETWORK_KINDS) if target in LINKS else ("process", PROCESS_KINDS)
                raise ValueError(f"target {target!r} is a {what}, but none of the kinds ({', '.join(kinds)}) "
                                 f"can hit a {what}; add one of {', '.join(fitting)}")
    for kind, pool in pools.items():
        if not pool:
            what = "link" if kind in NETWORK_KINDS else "process"
            if targets is None:
                raise ValueError(f"fault kind {kind!r} targets a {what}, but the experiment has no {what}")
            raise ValueError(f"fault kind {kind!r} targets a {what}, but no {what} is among the targets "
                             f"({', '.join(targets)})")
    return pools


def _parameters(kind: str, rng: random.Random) -> dict[str, Any]:
    """Kind-specific parameters, drawn so that each fault hurts without being absurd."""
    model = _MODELS[kind]
    params: dict[str, Any] = {}
    if kind == "partition":
        params["direction"] = rng.choice(("both", "both", "upstream", "downstream"))
    elif issubclass(model, ToxicFault):
        params["direction"] = rng.choice(("upstream", "downstream"))
    if kind == "latency":
        params["latency_ms"] = rng.randint(20, 500)
        params["jitter_ms"] = rng.randint(0, params["latency_ms"] // 2)
    elif kind == "bandwidth":
        params["rate_kbps"] = _log_uniform(rng, 4, 1024)
    elif kind == "slow_close":
        params["delay_ms"] = rng.randint(100, 3000)
    elif kind == "timeout":
        params["timeout_ms"] = 0 if rng.random() < 1 / 3 else rng.randint(100, 2000)
    elif kind == "reset_peer":
        params["timeout_ms"] = rng.randint(0, 1000)
    elif kind == "slicer":
        params["average_size"] = rng.randint(16, 256)
        params["size_variation"] = rng.randint(0, params["average_size"] // 2)
        params["delay_us"] = rng.randint(0, 2000)
    elif kind == "limit_data":
        params["bytes"] = _log_uniform(rng, 1024, 1 << 20)
    return params


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return min(high, max(low, round(math.exp(rng.uniform(math.log(low), math.log(high))))))


def _ms_up(seconds: float) -> int:
    return math.ceil(round(seconds * 1000, 6))


def _ms_down(seconds: float) -> int:
    return math.floor(round(seconds * 1000, 6))


_BASE_FIELDS = {"kind", "at", "at_records", "at_commits", "after_crash", "after_ready", "target", "duration",
                "toxicity", "hit"}


def _parameter_text(fault: Fault) -> str:
    fields = fault.model_dump(exclude_none=True)
    parts = [f"{k}={v}" for k, v in fields.items() if k not in _BASE_FIELDS]
    if getattr(fault, "toxicity", 1.0) != 1.0:
        parts.append(f"toxicity={fault.toxicity}")
    return " ".join(parts)
