"""Named crash points: places in the runtime and the drivers where an experiment can end a process.

An experiment arms a point with a hit count. The armed process exits at once with `os._exit`
(no cleanup, no flush: a crash, not a shutdown) and exit code CRASH_EXIT_CODE on that hit. A
marker file records the firing first, so a restarted incarnation does not fire it again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

CRASH_EXIT_CODE = 86

POINTS = (
    "source.poll.after",
    "source.ack.before",
    "sink.write.mid",
    "sink.prepare.before",
    "sink.prepare.after",
    "sink.commit.before",
    "sink.commit.mid",
    "sink.commit.after",
    "coordinator.persist.before",
    "coordinator.persist.after",
    "coordinator.commit.before",
    "coordinator.commit.mid",
    "coordinator.commit.after",
)
"""Every point the runtime and the drivers call; an experiment may arm any of them."""


def role_of(point: str) -> str:
    """Which process calls a point: the coordinator, or a worker (sources and sinks)."""
    return "coordinator" if point.startswith("coordinator.") else "worker"


MARKER_DIR = "crashpoints"
"""In the run directory: one file per crash point that fired."""


def marker(marker_dir: Path, process: str, point: str) -> Path:
    """The file that records that `point` fired in `process` (for this run, across incarnations)."""
    return marker_dir / f"{process}.{point}.fired"


class CrashPoints:
    """The points armed for one process, with their hit counters for this incarnation."""

    def __init__(self, armed: dict[str, int], marker_dir: Path, process: str,
                 on_fire: Callable[[str, int], None] = lambda point, hit: None):
        unknown = set(armed) - set(POINTS)
        if unknown:
            raise ValueError(f"unknown crash points: {sorted(unknown)}")
        self.armed = dict(armed)
        self.marker_dir = marker_dir
        self.process = process
        self.on_fire = on_fire
        self.hits: dict[str, int] = {}

    def _marker(self, point: str) -> Path:
        return marker(self.marker_dir, self.process, point)

    def hit(self, point: str) -> None:
        if point not in self.armed:
            return
        count = self.hits.get(point, 0) + 1
        self.hits[point] = count
        if count != self.armed[point] or self._marker(point).exists():
            return
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        self._marker(point).write_text(f"{count}\n")
        self.on_fire(point, count)
        os._exit(CRASH_EXIT_CODE)


class NoCrashes:
    """The hook for code run outside an experiment (tests, tools)."""

    def hit(self, point: str) -> None:
        pass
