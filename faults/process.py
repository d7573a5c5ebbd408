"""Process faults on a supervised process. Each `inject` returns the matching heal."""

from __future__ import annotations

import signal
from typing import Callable

from chaos.spec.faults import KillFault, PauseFault, ProcessFault, TerminateFault
from chaos.supervisor import Supervisor

Heal = Callable[[], None]


def inject(supervisor: Supervisor, fault: ProcessFault) -> Heal:
    name = fault.target
    if isinstance(fault, PauseFault):
        supervisor.signal(name, signal.SIGSTOP, event="process.pause")
        return lambda: supervisor.signal(name, signal.SIGCONT, event="process.resume")
    if isinstance(fault, (KillFault, TerminateFault)):
        supervisor.hold_down(name, graceful=isinstance(fault, TerminateFault))
        return lambda: supervisor.release(name)
    raise TypeError(f"{fault.kind} is not a process fault")
