"""Run the suite's cases on several lanes at once, each lane on an environment of its own.

Why: a case spends most of its time waiting (a workload paced at its rate, a drain, a restart), so
on two cores two cases side by side take little longer than one. A case resets its environment
before it runs (topics, proxies, toxics), so two cases can never share one: each lane owns one.
The first lane uses the suite's environment; every other lane starts a private one as it begins,
while the first is already at work. A lane whose environment cannot start leaves its share of the
work to the others.

The outcomes come back in the order of the items, whatever order the lanes finished them in, so
that the report reads the same for any number of lanes.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Worker = TypeVar("Worker")

JOIN_POLL = 0.5
"""How often the main thread wakes from waiting on the lanes, so that Ctrl-C reaches it at once."""


class Lanes(Generic[Worker]):
    """`count` lanes: lane 0 works with `first`; lane n > 0 with `start(n)`, called on its own thread
    (None, or an exception, when it could not start: the lane then takes no work)."""

    def __init__(self, count: int, first: Worker, start: Callable[[int], Worker | None],
                 on_lane_failed: Callable[[int, BaseException], None]):
        if count < 1:
            raise ValueError("at least one lane")
        self.count = count
        self.first = first
        self.start = start
        self.on_lane_failed = on_lane_failed

    def run(self, items: Sequence[Item], work: Callable[[Worker, Item], Result],
            on_begin: Callable[[Item], None], on_end: Callable[[Item, Result], None]) -> list[Result]:
        """Every item's result, in the items' order. One lane works on the calling thread, as the
        suite always has; more lanes run on threads, and the first error in any of them stops them
        all from taking new work and is raised here."""
        if self.count == 1:
            results = []
            for item in items:
                on_begin(item)
                results.append(outcome := work(self.first, item))
                on_end(item, outcome)
            return results
        return _Shared(items, work, on_begin, on_end).run(self)


class _Shared(Generic[Item, Result, Worker]):
    """The work queue and the results that the lanes' threads share."""

    def __init__(self, items: Sequence[Item], work: Callable[[Worker, Item], Result],
                 on_begin: Callable[[Item], None], on_end: Callable[[Item, Result], None]):
        self.items = items
        self.work = work
        self.on_begin = on_begin
        self.on_end = on_end
        self.pending: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(items)):
            self.pending.put(index)
        self.results: dict[int, Result] = {}
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def run(self, lanes: Lanes[Worker]) -> list[Result]:
        threads = [threading.Thread(target=self._lane, args=(lanes, n), name=f"lane-{n}", daemon=True)
                   for n in range(lanes.count)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(JOIN_POLL)
        except BaseException:
            self.stop.set()  # Ctrl-C: no lane takes new work; the caller's ExitStack stops the environments
            raise
        if self.errors:
            raise self.errors[0]
        missing = [self.items[i] for i in range(len(self.items)) if i not in self.results]
        if missing:
            raise RuntimeError(f"no lane could run {len(missing)} item(s): every lane's environment failed")
        return [self.results[i] for i in range(len(self.items))]

    def _lane(self, lanes: Lanes[Worker], number: int) -> None:
        try:
            worker = lanes.first if number == 0 else lanes.start(number)
        except Exception as e:  # noqa: BLE001 - this lane's environment; the others carry on
            lanes.on_lane_failed(number, e)
            return
        if worker is None:
            return
        try:
            while not self.stop.is_set():
                try:
                    index = self.pending.get_nowait()
                except queue.Empty:
                    return
                item = self.items[index]
                self.on_begin(item)
                self.results[index] = outcome = self.work(worker, item)
                self.on_end(item, outcome)
        except BaseException as e:  # noqa: BLE001 - re-raised on the calling thread
            self.errors.append(e)
            self.stop.set()
