"""What every seeded-bug variant of a driver shares, ours and plug-ins' alike."""

from __future__ import annotations

from typing import Any

from drivers.sdk.connector import Settings, WorkerContext
from drivers.sdk.events import Event
from drivers.sdk.history import History


class SeededBug:
    """What every seeded-bug variant shares: it records `mutant.active` in the run's history the first
    time its bug changes what the driver does. A failing invariant without that event proves nothing
    about the checker: the bug never ran. Listed first among a variant's bases, so that its `create`
    wraps the driver's."""

    history: History | None = None
    mutant: str | None = None
    _bitten = False

    @classmethod
    def create(cls, settings: Settings, ctx: WorkerContext) -> Any:
        driver = super().create(settings, ctx)  # type: ignore[misc]
        driver.history, driver.mutant = ctx.history, ctx.mutant
        return driver

    def bites(self, what: str) -> None:
        """The bug just changed what the driver does; `what` says how."""
        if not self._bitten and self.history is not None:
            self._bitten = True
            self.history.append(Event.MUTANT_ACTIVE, mutant=self.mutant, what=what)
