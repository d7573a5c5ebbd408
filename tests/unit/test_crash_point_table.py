"""Each connector's declared crash points are exactly the ones its driver's code passes.

An experiment may arm only the points its source and sink declare (and the coordinator's), so a
declaration that drifted from the code would refuse a good experiment or let through one whose
crash can never fire. The code is read, not run: `crash.hit("...")` calls in the driver class, its
bases, and the helper classes it builds.
"""

from __future__ import annotations

import inspect
import re

import pytest

from drivers.connectors import SINKS, SOURCES
from drivers.sdk.crashpoints import POINTS

HIT = re.compile(r'crash\.hit\("([a-z._]+)"\)')
KINDS = [*SOURCES.values(), *SINKS.values()]


def _passed_points(cls: type) -> set[str]:
    """Its own package's classes and ours (a plug-in's driver subclasses or builds its own)."""
    packages = ("drivers.", cls.__module__.split(".")[0] + ".")
    seen: set[type] = set()
    todo = [c for c in inspect.getmro(cls) if c.__module__.startswith(packages)]
    points: set[str] = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        source = inspect.getsource(current)
        points |= set(HIT.findall(source))
        namespace = vars(inspect.getmodule(current))
        for name in set(re.findall(r"\b([A-Z]\w+)\(", source)):  # helper classes it builds
            helper = namespace.get(name)
            if inspect.isclass(helper) and helper.__module__.startswith(packages) and helper not in seen:
                todo.append(helper)
    return points


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"{k.role}-{k.name}")
def test_declared_crash_points_are_the_ones_the_driver_passes(kind):
    assert set(kind.crash_points) <= set(POINTS)
    assert set(kind.crash_points) == _passed_points(kind.factory())
