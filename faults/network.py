"""Network faults on a named link, through Toxiproxy. Each `inject` returns the matching heal."""

from __future__ import annotations

from typing import Callable

from chaos.spec.models import DownFault, LatencyFault, PartitionFault
from faults.toxiproxy import Toxic, Toxiproxy

Heal = Callable[[], None]
NetworkFault = DownFault | PartitionFault | LatencyFault


def inject(toxiproxy: Toxiproxy, fault: NetworkFault, tag: str) -> Heal:
    link = fault.target
    if isinstance(fault, DownFault):
        toxiproxy.set_enabled(link, False)
        return lambda: toxiproxy.set_enabled(link, True)
    if isinstance(fault, PartitionFault):
        # A zero timeout holds connections open and drops their bytes: a blackhole, not a refusal.
        streams = ("upstream", "downstream") if fault.direction == "both" else (fault.direction,)
        toxics = [Toxic(f"{tag}-{s}", "timeout", s, 1.0, {"timeout": 0}) for s in streams]
    else:
        toxics = [Toxic(f"{tag}-{fault.direction}", "latency", fault.direction, fault.toxicity,
                        {"latency": fault.latency_ms, "jitter": fault.jitter_ms})]
    for toxic in toxics:
        toxiproxy.add_toxic(link, toxic)

    def heal() -> None:
        for toxic in toxics:
            toxiproxy.remove_toxic(link, toxic.name)

    return heal
