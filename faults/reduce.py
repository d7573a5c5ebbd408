"""Smaller fault schedules, for shrinking a failing run to a minimal reproducer.

Pure candidate generation, no running: `chunk_removals` drops faults in chunks, ddmin-style (the
caller goes from halves to quarters to single faults), and `simplifications` makes one fault simpler
in each way it can be: shorter, earlier, weaker, or a simpler kind. Every candidate is a valid
fault model, so it runs through the same schedule as a hand-written one.

Why here and not in the shrinker: what "simpler" means is a property of each fault kind, and the
fault catalogue is where the kinds live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from faults.catalog import FAULT_KINDS, FAULT_MODELS, CrashFault, Fault

_MODELS: dict[str, type] = dict(zip(FAULT_KINDS, FAULT_MODELS))

MIN_DURATION = 0.1
"""A fault is not shortened below this many seconds."""
MIN_SHIFT = 0.1
"""A fault is not moved earlier by less than this many seconds: finer than the nemesis's own steps,
a move changes nothing worth a run (halving 4.5 s down to a millisecond took a dozen runs)."""
MIN_TOXICITY = 0.1
"""A toxic is not weakened below this share of the connections it hits."""
SIMPLER_KIND = {"partition": "down", "down": "reset_peer", "kill": "terminate"}
"""A kind and the simpler one to try in its place: a blackhole becomes a refused connection, that a
reset; a SIGKILL becomes a SIGTERM."""
_WEAKER = {"latency_ms": 0.5, "jitter_ms": 0.0, "delay_ms": 0.5, "timeout_ms": 2.0, "rate_kbps": 2.0, "bytes": 2.0,
           "offset": 0.5}
"""How one step weakens a parameter: a factor on its value (a timeout, a bandwidth or a byte limit
that grows hurts less; a clock half as far off, either way)."""
_WEAKEST = {"timeout_ms": 60_000, "rate_kbps": 1 << 20, "bytes": 1 << 30}
"""Where growing stops: past a minute's timeout, a gigabyte a second or a gigabyte, a toxic is gone."""
_FLOOR = {"latency_ms": 10, "delay_ms": 10}
"""Where halving stops: a delay under 10 ms is lost in loopback's own noise (removing the toxic is
the removal phase's step)."""


def chunk_removals(faults: Sequence[Fault], parts: int) -> list[tuple[str, list[Fault]]]:
    """The schedule without each of its `parts` chunks in turn (ddmin's complements), each with a
    description of what was removed."""
    faults = list(faults)
    size = math.ceil(len(faults) / parts) if faults else 0
    candidates = []
    for start in range(0, len(faults), max(size, 1)):
        removed = range(start, min(start + size, len(faults)))
        what = f"fault {removed[0]}" if len(removed) == 1 else f"faults {removed[0]}-{removed[-1]}"
        candidates.append((f"remove {what}", faults[:removed[0]] + faults[removed[-1] + 1:]))
    return candidates


@dataclass(frozen=True)
class Simplification:
    aspect: str
    """What it simplifies: `kind`, `duration`, `trigger` or a parameter's name; a shrinker works
    through one aspect until it no longer helps, then moves to the next."""
    change: str
    fault: Fault


def simplifications(fault: Fault) -> list[Simplification]:
    """One-step simpler versions of `fault`, aspect by aspect in this order: a simpler kind, shorter,
    earlier, weaker. Within an aspect the boldest step comes first (straight to the minimum, then
    halfway), so that a fault that does not need its length loses it in one run."""
    fields = fault.model_dump(exclude_none=True)
    steps: list[tuple[str, str, dict[str, Any]]] = []
    simpler = SIMPLER_KIND.get(fault.kind)
    if simpler is not None:
        steps.append(("kind", f"{fault.kind} -> {simpler}", _as_kind(fields, simpler)))
    if isinstance(fault, CrashFault):
        if fault.hit > 1:
            steps.append(("hit", f"hit {fault.hit} -> 1", {**fields, "hit": 1}))
            steps.append(("hit", f"hit {fault.hit} -> {fault.hit - 1}", {**fields, "hit": fault.hit - 1}))
        return _valid(steps)
    duration = fields["duration"]
    for shorter in dict.fromkeys((MIN_DURATION, _ms(duration / 2))):
        if MIN_DURATION <= shorter < duration:
            steps.append(("duration", f"duration {duration}s -> {shorter}s", {**fields, "duration": shorter}))
    steps += _earlier(fields)
    steps += _weaker(fields)
    return _valid(steps)


def overlapping(faults: Sequence[Fault], settle: float) -> bool:
    """Whether two timed faults on one target overlap (or come within `settle` seconds): a fault
    moved earlier must not land on another, where a heal could cancel the next injection."""
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for fault in faults:
        if isinstance(fault, CrashFault) or (fault.at is None and fault.after_ready is None):
            continue
        clock, start = ("at", fault.at) if fault.at is not None else ("after_ready", fault.after_ready)
        spans.setdefault((clock, fault.target), []).append((start, start + fault.duration + settle))
    for intervals in spans.values():
        intervals.sort()
        if any(later[0] < earlier[1] for earlier, later in zip(intervals, intervals[1:])):
            return True
    return False


def _earlier(fields: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    for trigger in ("at", "after_ready"):
        if fields.get(trigger):
            value = fields[trigger]
            return [("trigger", f"{trigger} {value}s -> {earlier}s", {**fields, trigger: earlier})
                    for earlier in dict.fromkeys((0.0, _ms(value / 2))) if value - earlier >= MIN_SHIFT]
    if fields.get("at_records"):
        value = fields["at_records"]
        return [("trigger", f"at_records {value} -> {earlier}", {**fields, "at_records": earlier})
                for earlier in dict.fromkeys((0, value // 2))]
    if fields.get("at_commits", 1) > 1:
        value = fields["at_commits"]
        return [("trigger", f"at_commits {value} -> {earlier}", {**fields, "at_commits": earlier})
                for earlier in dict.fromkeys((1, value - 1))]
    return []


def _weaker(fields: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    steps = []
    if fields.get("direction") == "both":
        steps.append(("direction", "direction both -> upstream", {**fields, "direction": "upstream"}))
    if "toxicity" in fields and fields["toxicity"] / 2 >= MIN_TOXICITY:
        steps.append(("toxicity", f"toxicity {fields['toxicity']} -> {fields['toxicity'] / 2}",
                      {**fields, "toxicity": fields["toxicity"] / 2}))
    for name, factor in _WEAKER.items():
        value = fields.get(name)
        if value and value < _WEAKEST.get(name, math.inf):
            weaker = round(value * factor)
            if weaker != value and weaker >= _FLOOR.get(name, 0):
                steps.append((name, f"{name} {value} -> {weaker}", {**fields, name: weaker}))
    return steps


def _as_kind(fields: dict[str, Any], kind: str) -> dict[str, Any]:
    """The fault's trigger, target and duration under another kind (its own parameters dropped)."""
    model = _MODELS[kind]
    return {k: v for k, v in {**fields, "kind": kind}.items() if k in model.model_fields}


def _valid(steps: list[tuple[str, str, dict[str, Any]]]) -> list[Simplification]:
    """The steps that make a valid fault (a weaker value can fall outside its field's bounds)."""
    simpler = []
    for aspect, change, fields in steps:
        try:
            simpler.append(Simplification(aspect, change, _MODELS[fields["kind"]].model_validate(fields)))
        except ValueError:
            continue
    return simpler


def _ms(seconds: float) -> float:
    """Whole milliseconds, as the nemesis draws them."""
    return math.floor(round(seconds * 1000, 6)) / 1000
