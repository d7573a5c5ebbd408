"""Faults on a three-broker cluster as a whole: a side cut off from the rest, a rolling restart,
and a leader election.

A side's isolation blackholes the pair links between it and the other nodes (each direction of each
pair has a proxy of its own, see `chaos.env.cluster`). A rolling restart stops and restarts the
nodes through the environment, like a kill, one at a time; it runs on a thread of its own, so that
the schedule goes on firing while it rolls, and its heal waits for it. Roles are resolved when the
fault fires, and the resolution goes on the timeline.
"""

from __future__ import annotations

import threading
import uuid

from faults.catalog import ClusterFault, ElectFault, IsolateFault, RollingRestartFault
from faults.injector import ClusterControl, FaultContext, Heal
from faults.network import add_toxics, blackhole
from faults.targets import CONTROLLERS, NODES, links_between, side_of_split

ROLL_TIMEOUT = 600.0
"""How long a heal waits for a rolling restart to end: three restarts, each waiting for the ISR."""
QUORUM_KINDS = {"all": None, "replication": False, "controller": True}
"""An isolation's `links`, as the quorum flag of the pair links it cuts."""


def inject(fault: ClusterFault, context: FaultContext) -> Heal:
    if isinstance(fault, IsolateFault):
        return isolate(fault, context)
    if isinstance(fault, RollingRestartFault):
        return rolling_restart(fault, context)
    if isinstance(fault, ElectFault):
        elect(fault, context)
        return lambda: None  # an election is not undone: leadership moves on by itself
    raise TypeError(f"{fault.kind} is not a cluster fault")


def isolate(fault: IsolateFault, context: FaultContext) -> Heal:
    side = {part if part in NODES + CONTROLLERS else context.resolve_role(part) for part in side_of_split(fault.target)}
    separate = context.cluster is not None and context.cluster.separate_controllers
    links = links_between(side, fault.direction, QUORUM_KINDS[fault.links], separate)
    if not links:
        raise ValueError(f"{fault.target} resolved to {', '.join(sorted(side))}: no link of the kind asked "
                         "joins that side to the rest")
    tag = f"isolate-{uuid.uuid4().hex[:8]}"
    heals = [add_toxics(context.toxiproxy, link, blackhole(tag)) for link in links]

    def heal() -> None:
        for undo in reversed(heals):
            undo()

    return heal


def rolling_restart(fault: RollingRestartFault, context: FaultContext) -> Heal:
    cluster = _cluster(context)
    errors: list[BaseException] = []

    def roll() -> None:
        try:
            for node in NODES:
                context.services.stop_process(node, graceful=not fault.hard)()
                cluster.wait_in_sync()
        except BaseException as e:  # noqa: BLE001 - handed to the heal, which reports it
            errors.append(e)

    thread = threading.Thread(target=roll, name="rolling-restart", daemon=True)
    thread.start()

    def heal() -> None:
        thread.join(ROLL_TIMEOUT)
        if thread.is_alive():
            raise TimeoutError(f"the rolling restart had not ended after {ROLL_TIMEOUT:.0f}s")
        if errors:
            raise errors[0]

    return heal


def elect(fault: ElectFault, context: FaultContext) -> None:
    """The election, with the partition's leader resolved before and after it, so that the timeline
    shows the transfer (an unclean one is held because there is no leader before)."""
    cluster = _cluster(context)
    if fault.election == "preferred":
        context.resolve_role(fault.target)
    cluster.elect(fault.target, unclean=fault.election == "unclean")
    context.resolve_role(fault.target)


def _cluster(context: FaultContext) -> ClusterControl:
    if context.cluster is None:
        raise ValueError("this fault needs a three-broker cluster (environment.kafka.brokers: 3)")
    return context.cluster
