"""Process faults on the environment's services: pausing the Kafka broker or PostgreSQL.

Pausing stops the whole process tree (PostgreSQL's backends lead sessions of their own, so
signalling the postmaster's group would leave them serving), and the heal resumes it: a long GC
pause, or a frozen VM. Killing a service and restarting it on its data is not supported yet.
"""

from __future__ import annotations

import os
import signal
from typing import Callable

from chaos.env.environment import Environment
from chaos.env.postgres import children
from chaos.spec.faults import PauseFault, ProcessFault
from chaos.spec.targets import SERVICES

Heal = Callable[[], None]


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def inject(env: Environment, fault: ProcessFault) -> Heal:
    if fault.target not in SERVICES or not isinstance(fault, PauseFault):
        raise TypeError(f"{fault.kind} of {fault.target} is not a supported service fault")
    pid = env.state.processes[fault.target].pid
    tree = [pid, *(c.pid for c in children(pid))]
    _signal_all(tree, signal.SIGSTOP)
    return lambda: _signal_all(tree, signal.SIGCONT)
