"""The run's verdict: `result.json` (versioned), and the table printed at the end of a run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from chaos.checkers.verdict import Verdict
from chaos.errors import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_VIOLATION
from chaos.interrupt import EXIT_INTERRUPTED

RESULT_SCHEMA_VERSION = 3
"""3: `status` may also be interrupted (with `interrupted_by` and `healed_faults`); 2: pass, violation
or inconclusive; 1: pass or fail."""
_STYLE = {"pass": "green", "fail": "bold red", "info": "yellow", "inconclusive": "magenta", "violation": "bold red",
          "interrupted": "yellow"}


def table_digest(table: pa.Table) -> str:
    """A fingerprint of a table's rows, independent of their order: what two runs compare."""
    ordered = table.sort_by([(name, "ascending") for name in table.column_names]).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ordered.schema) as writer:
        writer.write_table(ordered, max_chunksize=1 << 30)
    return hashlib.sha256(sink.getvalue()).hexdigest()


class Outcome(StrEnum):
    """How a run ends, besides an invalid experiment (exit 2) and a failed environment (exit 3)."""

    PASS = "pass"
    VIOLATION = "violation"
    INCONCLUSIVE = "inconclusive"
    INTERRUPTED = "interrupted"
    """Ctrl-C or SIGTERM cut the run short: whatever its verdicts, none is held against the connector."""

    @property
    def exit_code(self) -> int:
        return {Outcome.PASS: EXIT_OK, Outcome.VIOLATION: EXIT_VIOLATION,
                Outcome.INCONCLUSIVE: EXIT_INCONCLUSIVE, Outcome.INTERRUPTED: EXIT_INTERRUPTED}[self]


def overall_status(verdicts: list[Verdict]) -> Outcome:
    """A violation if an invariant failed; else inconclusive if the run could not tell; else a pass."""
    if any(v.failed for v in verdicts):
        return Outcome.VIOLATION
    if any(v.inconclusive for v in verdicts):
        return Outcome.INCONCLUSIVE
    return Outcome.PASS


def write_result(run_dir: Path, verdicts: list[Verdict], status: Outcome | None = None,
                 **details: Any) -> dict[str, Any]:
    """Write `result.json` atomically; `status` defaults to what the verdicts say."""
    result = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "status": status or overall_status(verdicts),
        **details,
        "verdicts": [asdict(v) for v in verdicts],
    }
    tmp = run_dir / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, default=str))
    tmp.replace(run_dir / "result.json")
    return result


def print_verdicts(console: Console, name: str, verdicts: list[Verdict], run_dir: Path,
                   status: Outcome | None = None) -> None:
    outcome = status or overall_status(verdicts)
    table = Table(title=f"{name}: [{_STYLE.get(outcome, 'green')}]{outcome.upper()}[/]", title_justify="left")
    table.add_column("invariant")
    table.add_column("verdict")
    table.add_column("details")
    table.add_column("examples")
    for v in verdicts:
        table.add_row(v.invariant, f"[{_STYLE[v.status]}]{v.status}[/]", v.summary,
                      ", ".join(str(i) for i in v.examples))
    console.print(table)
    console.print(f"run directory: {run_dir}")
