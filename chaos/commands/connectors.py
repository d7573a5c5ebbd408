"""`chaos connectors`: every connector kind, where it comes from, what it can do and the rows it
joins; and every plug-in that was left out, with the reason."""

from __future__ import annotations

from dataclasses import fields

from rich.console import Console
from rich.table import Table

from chaos.certification.scenarios import slug
from chaos.matrix import ROWS
from drivers.connectors import KINDS, PLUGIN_PROBLEMS, origin
from drivers.sdk.capabilities import Capabilities
from drivers.sdk.connector import Connector


def capabilities_text(capabilities: Capabilities) -> str:
    """The capabilities a kind has, e.g. `two_phase, idempotent_commit, durable, schema: add/drop/widen`."""
    flags = [f.name for f in fields(capabilities) if f.name != "disk_faults_per_file"
             and isinstance(getattr(capabilities, f.name), bool) and getattr(capabilities, f.name)]
    if not capabilities.disk_faults_per_file:
        flags.append("disk faults before each write only")
    if capabilities.schema_changes:
        flags.append("schema: " + "/".join(sorted(capabilities.schema_changes)))
    return ", ".join(flags) or "none"


def rows_of(kind: Connector) -> list[str]:
    return [slug(r) for r in ROWS if (r.source if kind.role == "source" else r.sink) == kind.name]


def print_connectors(console: Console) -> None:
    table = Table(title="Connector kinds", title_justify="left")
    for column in ("kind", "role", "from", "declared", "capabilities", "rows"):
        table.add_column(column, overflow="fold")
    for kind in KINDS:
        table.add_row(kind.name, kind.role, str(origin(kind)), kind.maturity.value,
                      capabilities_text(kind.capabilities), "\n".join(rows_of(kind)) or "-")
    console.print(table)
    for problem in PLUGIN_PROBLEMS:
        console.print(f"[yellow]left out:[/] {problem}", highlight=False, markup=True)
