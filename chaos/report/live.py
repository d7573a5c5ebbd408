"""The live terminal display while a run is in progress: produced (or the input), committed, active faults.

It stays up through the drain, so that its last render shows the final counts."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chaos.workload.producer import WorkloadProgress


class LiveProgress:
    def __init__(self, console: Console, total: int, live_feed: bool = True):
        """`live_feed`: a producer feeds the source during the run; otherwise the input is all there."""
        self.progress = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console,
        )
        self.live_feed = live_feed
        self.produced = self.progress.add_task("produced" if live_feed else "input", total=total, note="")
        self.committed = self.progress.add_task("committed", total=total, note="")

    def __enter__(self) -> "LiveProgress":
        self.progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def update(self, workload: WorkloadProgress, committed: int, active_faults: list[str]) -> None:
        note = f"acked {workload.acked}, indeterminate {workload.indeterminate}" if self.live_feed else ""
        self.progress.update(self.produced, completed=workload.produced, note=note)
        faults = ("faults: " + ", ".join(active_faults)) if active_faults else ""
        self.progress.update(self.committed, completed=committed, note=faults)
