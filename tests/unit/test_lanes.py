"""The certification suite's lanes: every item runs once, on some lane, and the results come back in
the items' order; a lane that cannot start leaves its work to the others; an error stops them all."""

from __future__ import annotations

import threading
import time

import pytest

from chaos.certification.lanes import Lanes


def _never_fails(number: int, error: BaseException) -> None:
    raise AssertionError(f"lane {number} failed: {error}")


def test_one_lane_runs_every_item_in_order_on_the_calling_thread() -> None:
    seen: list[tuple[str, int]] = []
    results = Lanes(1, "first", lambda n: f"lane-{n}", _never_fails).run(
        [1, 2, 3], lambda worker, item: (worker, item, threading.current_thread().name),
        lambda item: seen.append(("begin", item)), lambda item, result: seen.append(("end", item)))
    assert results == [("first", i, threading.current_thread().name) for i in (1, 2, 3)]
    assert seen == [("begin", 1), ("end", 1), ("begin", 2), ("end", 2), ("begin", 3), ("end", 3)]


def test_lanes_share_the_work_and_return_results_in_the_items_order() -> None:
    started: list[int] = []
    at_once = threading.Barrier(3, timeout=10)  # the three lanes really run side by side

    def work(worker: str, item: int) -> tuple[str, int]:
        if item < 3:
            at_once.wait()
        time.sleep(0.01 * (item % 3))
        return worker, item * 10

    results = Lanes(3, "lane-0", lambda n: f"lane-{n}", _never_fails).run(
        list(range(12)), work, started.append, lambda item, result: None)
    assert [value for _, value in results] == [i * 10 for i in range(12)]
    assert sorted(started) == list(range(12))
    assert {worker for worker, _ in results[:3]} == {"lane-0", "lane-1", "lane-2"}


def test_a_lane_that_cannot_start_leaves_its_work_to_the_others() -> None:
    failed: list[int] = []

    def start(number: int) -> str:
        raise RuntimeError("no broker")

    results = Lanes(2, "lane-0", start, lambda n, e: failed.append(n)).run(
        list(range(5)), lambda worker, item: (worker, item), lambda item: None, lambda item, result: None)
    assert results == [("lane-0", i) for i in range(5)] and failed == [1]


def test_an_error_in_one_lane_stops_every_lane_and_is_raised() -> None:
    done: list[int] = []

    def work(worker: str, item: int) -> int:
        if item == 0:
            raise ValueError("broken case")
        time.sleep(0.05)
        return item

    with pytest.raises(ValueError, match="broken case"):
        Lanes(2, "lane-0", lambda n: f"lane-{n}", _never_fails).run(
            list(range(40)), work, lambda item: None, lambda item, result: done.append(item))
    assert len(done) < 39  # the other lane stopped taking work
