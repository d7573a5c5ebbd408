"""The crash hook the connector unit tests hand their drivers, in place of the runtime's CrashPoints.

A test that arms a point gets `SimulatedCrash` raised there, as an armed crash point would end the
process; the test then abandons that instance and builds a new one, as a restarted worker would.
(Tests that arm nothing use the runtime's own `NoCrashes`.)
"""

from __future__ import annotations

from typing import Callable


class SimulatedCrash(RuntimeError):
    pass


class Crash:
    """Records every point hit; raises on the `hit`-th pass of `fire_on` since it was armed (in the
    constructor or by setting `fire_on`), and runs `on[point]` once, the first time that point is hit
    (to inject a fault at a precise moment)."""

    def __init__(self, fire_on: str | None = None, hit: int = 1,
                 on: dict[str, Callable[[], None]] | None = None):
        self.fire_on = fire_on
        self.fire_hit = hit
        self.on = dict(on or {})
        self.points: list[str] = []

    @property
    def fire_on(self) -> str | None:
        return self._fire_on

    @fire_on.setter
    def fire_on(self, point: str | None) -> None:
        self._fire_on = point
        self._passes = 0

    def hit(self, point: str) -> None:
        self.points.append(point)
        if point in self.on:
            self.on.pop(point)()
        if point == self._fire_on:
            self._passes += 1
            if self._passes == self.fire_hit:
                raise SimulatedCrash(point)
