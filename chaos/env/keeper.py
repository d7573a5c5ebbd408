"""The keeper: one long-lived thread per environment owner that reaps and spawns its service children."""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import Callable

from chaos.env.launch import Service
from chaos.errors import EnvironmentFailure


class Keeper:
    """One long-lived thread that reaps this process's service children and spawns their replacements.

    Reaping: a SIGKILLed child stays a zombie until its parent waits for it. Spawning: a child with
    PR_SET_PDEATHSIG dies when the *thread* that spawned it exits, so a restart that must die with
    the owner cannot be spawned from the fault schedule's thread.
    """

    def __init__(self, children: list[Service]):
        self._children = list(children)
        self._lock = threading.Lock()
        self._requests: queue.Queue[tuple[Callable[[], Service], concurrent.futures.Future]] = queue.Queue()
        self._closing = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="env-keeper", daemon=True)
        self._thread.start()

    def adopt(self, proc: Service) -> None:
        with self._lock:
            self._children.append(proc)

    def spawn(self, factory: Callable[[], Service], timeout: float = 60.0) -> Service:
        if self._closing.is_set():
            raise EnvironmentFailure("the environment is stopping: nothing more is started")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._requests.put((factory, future))
        return future.result(timeout)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                factory, future = self._requests.get(timeout=0.2)
            except queue.Empty:
                pass
            else:
                if future.set_running_or_notify_cancel():
                    try:
                        proc = factory()
                    except BaseException as e:  # noqa: BLE001 - handed to the caller
                        future.set_exception(e)
                    else:
                        self.adopt(proc)
                        future.set_result(proc)
            with self._lock:
                children = list(self._children)
            for child in children:
                try:
                    child.poll()  # reaps it if it has exited
                except OSError:
                    pass

    def children(self) -> list[Service]:
        with self._lock:
            return list(self._children)

    def refuse(self) -> None:
        """Spawn nothing more (the environment is stopping); reaping goes on until `close`."""
        self._closing.set()

    def close(self) -> None:
        """End the thread: only once its children are stopped, since they may die with it (PDEATHSIG)."""
        self._closing.set()
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)
        while True:
            try:
                _, future = self._requests.get_nowait()
            except queue.Empty:
                break
            future.set_exception(EnvironmentFailure("the environment is stopping: nothing more is started"))
