"""Ctrl-C and SIGTERM end a command the same way, and an interrupted run says which one it was.

Both arrive in the main thread as a `KeyboardInterrupt` (SIGTERM as its subclass `Terminated`), so
every ExitStack unwinds alike: faults healed, processes stopped. The runner then records the run as
interrupted and raises `RunInterrupted`, which carries the run directory up to the CLI. Standard
library only: the CLI imports this before it knows which command runs.
"""

from __future__ import annotations

import signal
from pathlib import Path

EXIT_INTERRUPTED = 130
"""128 + SIGINT, what a shell reports for a Ctrl-C: the exit code of an interrupted command, SIGTERM included."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where a Ctrl-C's KeyboardInterrupt would be, so that a run unwinds the same way."""

    def __init__(self, signum: int):
        self.signal_name = signal.Signals(signum).name
        super().__init__(self.signal_name)


class RunInterrupted(KeyboardInterrupt):
    """A run was interrupted, and its `result.json` (status `interrupted`) is written."""

    def __init__(self, run_dir: Path, signal_name: str, unhealed: int):
        self.run_dir = run_dir
        self.signal_name = signal_name
        self.unhealed = unhealed
        """Faults injected whose heal failed or never ran: the terminal must not claim they were healed."""
        super().__init__(f"{run_dir} interrupted by {signal_name}")


def terminate(signum: int, frame: object) -> None:
    """The SIGTERM handler."""
    raise Terminated(signum)


def signal_name(interrupt: BaseException) -> str:
    """Which signal interrupted: a bare KeyboardInterrupt is Ctrl-C's SIGINT."""
    if isinstance(interrupt, (Terminated, RunInterrupted)):
        return interrupt.signal_name
    return "SIGINT"


def repeated(interrupt: BaseException) -> bool:
    """The interrupt came while an earlier one was being handled (a second Ctrl-C during the
    cleanup): the user wants out now, not after the checks."""
    seen = interrupt.__context__
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__context__
    return False


def interrupted_message(interrupt: KeyboardInterrupt) -> str:
    """The CLI's last line for an interrupted command (plain text)."""
    name = signal_name(interrupt)
    if not isinstance(interrupt, RunInterrupted):
        return f"interrupted ({name}): every fault was healed and every process stopped"
    healed = (f"{interrupt.unhealed} fault(s) could NOT be healed (see result.json)" if interrupt.unhealed
              else "every fault was healed")
    return (f"interrupted ({name}): {healed}, every process stopped; the run is recorded as interrupted in "
            f"{interrupt.run_dir / 'result.json'}")
