"""Network faults on a named link, through Toxiproxy. Each `inject` returns the matching heal."""

from __future__ import annotations

from typing import Callable

from chaos.spec.faults import DownFault, NetworkFault, PartitionFault, ToxicFault
from faults.toxiproxy import Toxic, Toxiproxy

Heal = Callable[[], None]


def inject(toxiproxy: Toxiproxy, fault: NetworkFault, tag: str) -> Heal:
    link = fault.target
    if isinstance(fault, DownFault):
        toxiproxy.set_enabled(link, False)
        return lambda: toxiproxy.set_enabled(link, True)
    if isinstance(fault, PartitionFault):
        # A zero timeout holds connections open and drops their bytes: a blackhole, not a refusal.
        streams = ("upstream", "downstream") if fault.direction == "both" else (fault.direction,)
        toxics = [Toxic(f"{tag}-{s}", "timeout", s, 1.0, {"timeout": 0}) for s in streams]
    elif isinstance(fault, ToxicFault):
        toxics = [Toxic(f"{tag}-{fault.direction}", fault.toxic_type, fault.direction, fault.toxicity,
                        fault.toxic_attributes())]
    else:
        raise TypeError(f"{fault.kind} is not a network fault")
    for toxic in toxics:
        toxiproxy.add_toxic(link, toxic)

    def heal() -> None:
        for toxic in toxics:
            toxiproxy.remove_toxic(link, toxic.name)

    return heal
