"""The run's verdict: `result.json` (versioned), and the table printed at the end of a run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from chaos.checkers.verdict import Verdict

RESULT_SCHEMA_VERSION = 1
_STYLE = {"pass": "green", "fail": "bold red", "info": "yellow"}


def table_digest(table: pa.Table) -> str:
    """A fingerprint of a table's rows, independent of their order: what two runs compare."""
    ordered = table.sort_by([(name, "ascending") for name in table.column_names]).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ordered.schema) as writer:
        writer.write_table(ordered, max_chunksize=1 << 30)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def overall_status(verdicts: list[Verdict]) -> str:
    return "fail" if any(v.failed for v in verdicts) else "pass"


def write_result(run_dir: Path, verdicts: list[Verdict], **details: Any) -> dict[str, Any]:
    result = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "status": overall_status(verdicts),
        **details,
        "verdicts": [asdict(v) for v in verdicts],
    }
    tmp = run_dir / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, default=str))
    tmp.replace(run_dir / "result.json")
    return result


def print_verdicts(console: Console, name: str, verdicts: list[Verdict], run_dir: Path) -> None:
    table = Table(title=f"{name}: {overall_status(verdicts).upper()}", title_justify="left")
    table.add_column("invariant")
    table.add_column("verdict")
    table.add_column("details")
    table.add_column("examples")
    for v in verdicts:
        table.add_row(v.invariant, f"[{_STYLE[v.status]}]{v.status}[/]", v.summary,
                      ", ".join(str(i) for i in v.examples))
    console.print(table)
    console.print(f"run directory: {run_dir}")
