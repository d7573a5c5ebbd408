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


class History:
    def __init__(self, path: Path, source: str):
        self.path = path
        self.source = source
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, event: str, **fields: Any) -> None:
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
