"""Connector kinds from other distributions: plug-ins registered under the entry point group
`chaos.connectors`.

An entry point names one `Connector`, or a tuple of them, conventionally under the kind's name:

    [project.entry-points."chaos.connectors"]
    postgres-2pc = "chaos_postgres.connectors:POSTGRES_2PC"

Loading it imports only the module that holds the entry, in every process of the testbed (the
harness and each worker), so that module should import the SDK (`drivers.sdk`) and nothing heavy;
the driver and the harness side are named by import path and loaded where they run. A plug-in
that fails to import, whose entry is not a valid kind, or whose kind clashes with another is left
out with one line naming its distribution and the problem (`PluginProblem`); every other kind
keeps working, and only a command that names the broken kind stops on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Sequence

from drivers.sdk.capabilities import Capabilities, Maturity
from drivers.sdk.connector import Connector, Mutant
from drivers.sdk.crashpoints import POINTS
from drivers.sdk.links import CONNECTOR_LINKS

GROUP = "chaos.connectors"
SOURCE_ONLY = ("replayable", "event_time", "late_routing")
"""Capabilities that only a source can have (a sink that claimed one would mislead the matrix)."""
SINK_ONLY = ("two_phase", "key_order")


@dataclass(frozen=True)
class Origin:
    """Where a kind comes from: built in, or a plug-in distribution."""

    distribution: str | None = None
    version: str | None = None

    @property
    def plugin(self) -> bool:
        return self.distribution is not None

    def __str__(self) -> str:
        return "built in" if self.distribution is None else f"{self.distribution} {self.version}"


BUILT_IN = Origin()


@dataclass(frozen=True)
class PluginProblem:
    entry: str
    """The entry point's name: by convention, the kind it would have registered."""
    distribution: str
    problem: str

    def __str__(self) -> str:
        return f"plug-in {self.distribution}, entry point {self.entry!r} in {GROUP}: {self.problem}"


@dataclass(frozen=True)
class Discovered:
    kinds: tuple[tuple[Connector, Origin], ...]
    problems: tuple[PluginProblem, ...]


def discover(built_in: Sequence[Connector]) -> Discovered:
    """Every plug-in kind that loads and is valid, and one problem for each that is not."""
    taken = {(k.role, k.name): BUILT_IN for k in built_in}
    kinds: list[tuple[Connector, Origin]] = []
    problems: list[PluginProblem] = []
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        origin = _origin(entry)
        try:
            loaded = entry.load()
        except Exception as e:  # a plug-in's import may fail in any way; it must not take the rest down
            problems.append(PluginProblem(entry.name, str(origin), f"cannot import {entry.value}: "
                                          f"{type(e).__name__}: {e}"))
            continue
        for kind in loaded if isinstance(loaded, (tuple, list)) else (loaded,):
            problem = kind_problem(kind)
            if problem is None and (kind.role, kind.name) in taken:
                problem = f"the {kind.role} kind {kind.name!r} is already provided by {taken[kind.role, kind.name]}"
            if problem is not None:
                problems.append(PluginProblem(getattr(kind, "name", entry.name), str(origin), problem))
                continue
            taken[kind.role, kind.name] = origin
            kinds.append((kind, origin))
    return Discovered(tuple(kinds), tuple(problems))


def _origin(entry: EntryPoint) -> Origin:
    dist = entry.dist
    return Origin(dist.name, dist.version) if dist is not None else Origin("an unknown distribution", "?")


def kind_problem(kind: Any) -> str | None:
    """What is wrong with a plug-in's kind, or None: the checks a kind in our own table passes by review."""
    if not isinstance(kind, Connector):
        return f"{type(kind).__name__} is not a drivers.sdk.Connector"
    if kind.role not in ("source", "sink"):
        return f"role {kind.role!r} is neither 'source' nor 'sink'"
    if not isinstance(kind.capabilities, Capabilities):
        return f"capabilities must be a drivers.sdk.Capabilities, not {type(kind.capabilities).__name__}"
    if not isinstance(kind.maturity, Maturity):
        return f"maturity must be a drivers.sdk.Maturity, not {kind.maturity!r}"
    wrong_side = SINK_ONLY if kind.role == "source" else SOURCE_ONLY
    claimed = [flag for flag in wrong_side if getattr(kind.capabilities, flag)]
    if claimed:
        return f"a {kind.role} cannot claim {', '.join(claimed)}"
    for what, path in (("driver", kind.driver), ("harness", kind.harness)):
        if not isinstance(path, str) or ":" not in path:
            return f"{what} must be an import path 'module:attribute', not {path!r}"
    unknown_points = [p for p in kind.crash_points if p not in POINTS or p.startswith("coordinator.")]
    if unknown_points:
        return f"unknown crash points {unknown_points} (a driver may pass: {', '.join(POINTS[:8])})"
    unknown_links = [link for link in kind.links if link not in CONNECTOR_LINKS]
    if unknown_links:
        return f"unknown links {unknown_links} (known: {', '.join(CONNECTOR_LINKS)})"
    for mutant in kind.mutants:
        if not isinstance(mutant, Mutant) or ":" not in mutant.driver or mutant.repeats < 1:
            return f"mutant {getattr(mutant, 'name', mutant)!r} is not a valid drivers.sdk.Mutant"
    return None
