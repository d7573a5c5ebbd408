"""What read_committed readers of a topic can reach: its last stable offsets, sampled through a run.

A read_committed consumer reads up to a partition's last stable offset (LSO), the first offset of
its oldest open transaction. A transaction that is never committed nor aborted (a zombie producer,
a lost marker: KIP-664's hanging transaction) holds the LSO behind the high watermark for good, and
every reader waits behind it: the liveness checker names it from these samples
(`chaos.checkers.liveness`), rather than letting it pass for a slow drain.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from drivers.sdk.events import Event

log = logging.getLogger(__name__)
INTERVAL = 2.0
"""Seconds between samples: a hanging transaction is one stuck for many of them."""


def stable_offsets(admin: AdminClient, topic: str) -> dict[int, tuple[int, int]]:
    """Each partition's (last stable offset, high watermark)."""
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    request = {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}
    ends = {}
    for isolation in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        futures = admin.list_offsets(request, isolation_level=isolation, request_timeout=10)
        ends[isolation] = {tp.partition: future.result(timeout=15).offset for tp, future in futures.items()}
    return {p: (ends[IsolationLevel.READ_COMMITTED][p], ends[IsolationLevel.READ_UNCOMMITTED][p])
            for p in sorted(partitions)}


class StableOffsetsProbe:
    """Samples the stable offsets of `topics` every `interval` seconds on a daemon thread, into the
    run's history, until `stop` (which takes one last sample)."""

    def __init__(self, admin: Callable[[], AdminClient], topics: list[str], append: Callable[..., Any],
                 interval: float = INTERVAL):
        self.admin = admin
        self.topics = topics
        self.append = append
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stable-offsets", daemon=True)

    def start(self) -> None:
        if self.topics:
            self._thread.start()

    def stop(self) -> None:
        """Stop sampling, after a last sample: the state the run ends in is what a hang is judged by."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(30)
            self.sample(self.admin())

    def sample(self, admin: AdminClient) -> None:
        for topic in self.topics:
            try:
                offsets = stable_offsets(admin, topic)
            except Exception as e:  # noqa: BLE001 - a missed sample is no evidence either way
                log.debug("stable offsets of %s: %s", topic, e)
                continue
            self.append(Event.STABLE_OFFSETS, topic=topic,
                        offsets={str(p): [lso, hw] for p, (lso, hw) in offsets.items()})

    def _run(self) -> None:
        admin = self.admin()
        while not self._stop.wait(self.interval):
            self.sample(admin)
