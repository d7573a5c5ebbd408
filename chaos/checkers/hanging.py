"""Hanging transactions: a read_committed topic partition whose last stable offset stopped short of
its high watermark, and stayed there until the run ended.

The samples are the harness's (`kafka.stable_offsets`, from `chaos.sides.stable_offsets`). An LSO
behind the high watermark is an open transaction; one that has not moved for `HANG_SECONDS` by the
last sample is a transaction no one will finish in time (Kafka aborts it only after its
`transaction.timeout.ms`), and every read_committed reader of that partition is stuck behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.sdk.events import Event

HANG_SECONDS = 10.0
"""How long an LSO must have stood still behind the high watermark, at the end, to be a hang: longer
than any commit interval, fault recovery or coordinator failover of a healthy pipeline."""


@dataclass(frozen=True)
class Hang:
    topic: str
    partition: int
    stable_offset: int
    high_watermark: int
    seconds: float


def describe_hangs(hangs: list[Hang]) -> str:
    """One phrase per topic: which partitions hang, for how long, and where the first one stands."""
    phrases = []
    for topic in sorted({hang.topic for hang in hangs}):
        mine = [hang for hang in hangs if hang.topic == topic]
        first = mine[0]
        phrases.append(f"read_committed readers of {topic} are stuck behind an open transaction on "
                       f"{len(mine)} partition(s) ({', '.join(str(h.partition) for h in mine)}) for up to "
                       f"{max(h.seconds for h in mine):.0f}s (partition {first.partition} at last stable offset "
                       f"{first.stable_offset}, high watermark {first.high_watermark})")
    return "; ".join(phrases)


def hanging_transactions(history: list[dict[str, Any]], hang_seconds: float = HANG_SECONDS) -> list[Hang]:
    samples: dict[tuple[str, int], list[tuple[float, int, int]]] = {}
    for event in history:
        if event.get("event") == Event.STABLE_OFFSETS:
            for partition, (lso, hw) in event["offsets"].items():
                samples.setdefault((event["topic"], int(partition)), []).append((float(event["ts"]), lso, hw))
    hangs = []
    for (topic, partition), series in sorted(samples.items()):
        last_ts, lso, hw = series[-1]
        if lso >= hw:
            continue
        since = last_ts
        for ts, earlier_lso, _ in reversed(series):
            if earlier_lso != lso:
                break
            since = ts
        if last_ts - since >= hang_seconds:
            hangs.append(Hang(topic, partition, lso, hw, last_ts - since))
    return hangs
