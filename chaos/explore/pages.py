"""The HTML summaries of `chaos explore` and `chaos shrink`: one self-contained page, a table of
runs or steps, each linked to its run's own report."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

_CSS = ("body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1d2330}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccd;padding:3px 8px;text-align:left;vertical-align:top}"
        "th{background:#eef}.fail{color:#c92a2a;font-weight:600}.pass{color:#2b8a3e}"
        ".error,.invalid{color:#e67700}.inconclusive{color:#862e9c}")
COLUMNS = ("label", "change", "seed", "schedule_digest", "faults", "status", "failed", "seconds", "run_dir")
"""The fields shown, in this order, of those the rows have."""


def write_page(path: Path, title: str, summary: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    columns = [c for c in COLUMNS if any(c in row for row in rows)]
    head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(c, row.get(c), path.parent) for c in columns) + "</tr>" for row in rows)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>",
             *(f"<p>{escape(line)}</p>" for line in summary),
             f"<table><tr>{head}</tr>{body}</table></body></html>"]
    path.write_text("\n".join(parts))
    return path


def _cell(column: str, value: Any, base: Path) -> str:
    if value is None:
        return "<td></td>"
    if column == "run_dir":
        relative = Path(value).relative_to(base) if Path(value).is_relative_to(base) else Path(value)
        return f'<td><a href="{quote(str(relative))}/report.html">{escape(relative.name)}</a></td>'
    if column == "status":
        return f'<td class="{escape(str(value))}">{escape(str(value))}</td>'
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return f"<td>{escape(str(value))}</td>"
