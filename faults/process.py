"""Process faults: kill, terminate or pause a pipeline process or one of the environment's services.

A pipeline process is restarted by its supervisor when the fault heals; a service (the broker, a
node of a cluster, PostgreSQL) is started again on its data by the environment. Either way the
fault only names the target; what stopping and starting it means belongs to whoever owns it. A role
(the Connect worker running the commit coordinator, a cluster's partition leader) is resolved to its
process or node when the fault fires.
"""

from __future__ import annotations

from typing import Callable

from faults.catalog import ProcessFault
from faults.injector import FaultContext, Heal, ProcessControl
from faults.targets import CONTROLLERS, NODES, ROLES, SERVICES, cluster_role

ACTIONS: dict[str, Callable[[ProcessControl, str], Heal]] = {
    "kill": lambda control, name: control.stop_process(name, graceful=False),
    "terminate": lambda control, name: control.stop_process(name, graceful=True),
    "pause": lambda control, name: control.pause_process(name),
}


def inject(fault: ProcessFault, context: FaultContext) -> Heal:
    name = context.resolve_role(fault.target) if fault.target in ROLES or cluster_role(fault.target) else fault.target
    if name in SERVICES or name in NODES or name in CONTROLLERS:
        return ACTIONS[fault.kind](context.services, name)
    return ACTIONS[fault.kind](context.processes, name)
