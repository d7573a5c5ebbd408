"""The append-only run history (JSONL), shared by the harness and the pipeline processes.

Each event is one line written with O_APPEND in a single write, so lines from several processes
never interleave.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from drivers.sdk.events import Event

TRUE_EPOCH = "CHAOS_TRUE_EPOCH"
"""The harness passes its `true_epoch` on to the processes it starts, under this variable."""


def true_epoch() -> float:
    """The wall-clock time at which the monotonic clock read 0: the harness's when it passed it on.

    Why: a history's times are the observer's, and a clock fault moves the wall clock of the process
    under test (not its monotonic clock, which is one clock for the whole machine). Timed from this
    epoch, every process's events keep to the harness's one true clock, faulted or not."""
    inherited = os.environ.get(TRUE_EPOCH)
    return float(inherited) if inherited else time.time() - time.monotonic()


class History:
    def __init__(self, path: Path, source: str):
        self.path = path
        self.source = source
        self._epoch = true_epoch()
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, event: Event, **fields: Any) -> None:
        ts = self._epoch + time.monotonic()
        line = json.dumps({"ts": ts, "source": self.source, "event": event, **fields}, default=str)
        with self._lock:
            os.write(self._fd, (line + "\n").encode())

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def read_history(path: Path) -> list[dict[str, Any]]:
    """Every complete event; a torn last line (from a killed writer) is skipped."""
    events = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


class HistoryTail:
    """The events appended to a history file since the last look: how the harness follows what the
    pipeline's processes do (they share the file). A line still being written is left for next time."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0

    def new_events(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        events = []
        for line in complete.splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # torn by a writer killed mid-line; the next line is whole
        return events
