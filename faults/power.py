"""A power cut: every pipeline process killed, and the sink's unfsynced writes lost with them.

The kill comes first, so that no process writes again between the loss and its own death; the
heal lets the supervisor start them all again.
"""

from __future__ import annotations

from faults.catalog import LoseUnfsyncedFault
from faults.injector import FaultContext, Heal


def inject(fault: LoseUnfsyncedFault, context: FaultContext) -> Heal:
    if context.storage is None:
        raise ValueError("the sink's output is not served through lazyfs, so no unfsynced write can be lost")
    heals = [context.processes.stop_process(name, graceful=False) for name in context.pipeline]
    context.storage.lose_unfsynced()

    def heal() -> None:
        for restart in heals:
            restart()
    return heal
