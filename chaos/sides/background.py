"""What the harness's readers during a run share: a daemon thread of their own, started once and
stopped once, so that reading the output never holds up the run."""

from __future__ import annotations

import threading


class BackgroundReader:
    """Runs `_run` on a daemon thread named `name` from `start` until `stop`; `_run` returns once
    `self._stop` is set."""

    def __init__(self, name: str):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        raise NotImplementedError
