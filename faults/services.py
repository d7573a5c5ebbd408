"""Process faults on the environment's services: the Kafka broker and PostgreSQL.

- `pause` stops the whole process tree (PostgreSQL's backends lead sessions of their own, so
  signalling the postmaster's group would leave them serving), and the heal resumes it: a long GC
  pause, or a frozen VM.
- `kill` SIGKILLs the whole tree (the broker's process group; the postmaster and every backend),
  as a crash of the node would. `terminate` shuts the service down cleanly and waits, bounded,
  for it to exit: SIGTERM for Kafka (a controlled shutdown), PostgreSQL's fast shutdown (SIGINT)
  for PostgreSQL (its SIGTERM, a smart shutdown, would wait for every client to leave).

  Either way the service stays down for the fault's `duration`. The heal starts it again on the
  same data directory, ports and configuration (`Environment.restart_service`) and returns once it
  is healthy again: Kafka answers a metadata request on its direct listener, PostgreSQL a query.
  The new pid goes into the environment's state files, so later runs, health checks and
  `chaos env down` find it.
"""

from __future__ import annotations

import os
import signal
from typing import Callable

from chaos.env.environment import Environment
from chaos.env.postgres import children
from chaos.spec.faults import KillFault, PauseFault, ProcessFault, TerminateFault
from chaos.spec.targets import SERVICES

Heal = Callable[[], None]


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def inject(env: Environment, fault: ProcessFault) -> Heal:
    if fault.target not in SERVICES:
        raise TypeError(f"{fault.target} is not a service")
    name = fault.target
    if isinstance(fault, PauseFault):
        env.reload_processes()  # a restart by an earlier fault or run changed the pid
        pid = env.state.processes[name].pid
        tree = [pid, *(c.pid for c in children(pid))]
        _signal_all(tree, signal.SIGSTOP)
        return lambda: _signal_all(tree, signal.SIGCONT)
    if isinstance(fault, (KillFault, TerminateFault)):
        env.stop_service(name, graceful=isinstance(fault, TerminateFault))
        return lambda: env.restart_service(name)
    raise TypeError(f"{fault.kind} of {name} is not a supported service fault")
