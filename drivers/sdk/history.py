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


class History:
    def __init__(self, path: Path, source: str):
        self.path = path
        self.source = source
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, event: Event, **fields: Any) -> None:
        line = json.dumps({"ts": time.time(), "source": self.source, "event": event, **fields}, default=str)
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
