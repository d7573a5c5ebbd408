"""Removes a private Docker environment's containers once its harness is gone, however it went.

A child process dies with the harness (PR_SET_PDEATHSIG); a container does not, since the engine
runs it. So a private Docker environment gets a watchman, as Testcontainers gets Ryuk: a process in
a session of its own (Ctrl-C and a kill of the harness's group do not reach it) that reads a pipe
from the harness until it closes, then removes every container of the environment. The kernel
closes the pipe whether the harness stopped the environment, exited, or was SIGKILLed; after a
clean stop the containers are already gone, and it finds none.

A shared environment (`chaos env up`) has none: it is meant to outlive the command that started it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chaos.env.containers import remove_containers

CLOSE_TIMEOUT = 60.0
"""How long the harness waits for the watchman to finish after a stop."""


class Reaper:
    """The watchman of the environment `owner` (its containers' `chaos.owner` label)."""

    def __init__(self, owner: str, log_path: Path):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self._process = subprocess.Popen([sys.executable, "-m", "chaos.env.reaper", owner],
                                             stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)

    def close(self) -> None:
        """Close the pipe: the watchman removes whatever containers are left, then exits."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def main(owner: str) -> int:
    sys.stdin.buffer.read()  # returns at end of file: the harness's end of the pipe is closed
    removed = remove_containers(owner)
    print(f"reaper: the harness of {owner} is gone; removed {removed} container(s) it left", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
