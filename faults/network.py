"""Network faults on a named link, through Toxiproxy."""

from __future__ import annotations

import uuid

from faults.catalog import DownFault, NetworkFault, PartitionFault, ToxicFault
from faults.injector import FaultContext, Heal
from faults.toxiproxy import Toxic, Toxiproxy


def inject(fault: NetworkFault, context: FaultContext) -> Heal:
    """The fault on every proxy of the link (one, or one per broker of a cluster)."""
    heals = [_inject(fault, context, proxy) for proxy in context.proxies(fault.target)]

    def heal() -> None:
        for undo in reversed(heals):
            undo()

    return heals[0] if len(heals) == 1 else heal


def _inject(fault: NetworkFault, context: FaultContext, link: str) -> Heal:
    toxiproxy = context.toxiproxy
    if isinstance(fault, DownFault):
        toxiproxy.set_enabled(link, False)
        return lambda: toxiproxy.set_enabled(link, True)
    tag = f"{fault.kind}-{uuid.uuid4().hex[:8]}"  # toxic names are unique per link
    if isinstance(fault, PartitionFault):
        toxics = blackhole(tag, ("upstream", "downstream") if fault.direction == "both" else (fault.direction,))
    elif isinstance(fault, ToxicFault):
        toxics = [Toxic(f"{tag}-{fault.direction}", fault.toxic_type, fault.direction, fault.toxicity,
                        fault.toxic_attributes())]
    else:
        raise TypeError(f"{fault.kind} is not a network fault")
    return add_toxics(toxiproxy, link, toxics)


def blackhole(tag: str, streams: tuple[str, ...] = ("upstream", "downstream")) -> list[Toxic]:
    """A zero timeout holds connections open and drops their bytes: a blackhole, not a refusal."""
    return [Toxic(f"{tag}-{stream}", "timeout", stream, 1.0, {"timeout": 0}) for stream in streams]


def add_toxics(toxiproxy: Toxiproxy, link: str, toxics: list[Toxic]) -> Heal:
    for toxic in toxics:
        toxiproxy.add_toxic(link, toxic)

    def heal() -> None:
        for toxic in toxics:
            toxiproxy.remove_toxic(link, toxic.name)

    return heal
