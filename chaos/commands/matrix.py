"""`chaos matrix`: the guarantee matrix as a table, with each row's guarantee and maturity, and
whether a plug-in kind is in it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from chaos.matrix import PROFILES, ROWS


def print_matrix(console: Console) -> None:
    table = Table(title="Guarantee = weakest of source, sink and profile", title_justify="left")
    for column in ("source", "sink", "profile", "guarantee", "maturity", "from"):
        table.add_column(column, no_wrap=True)
    for row in ROWS:
        profile = {PROFILES[0]: "any", PROFILES[1]: f"{PROFILES[1]}+"}.get(row.weakest_profile, row.weakest_profile)
        table.add_row(row.source, row.sink, profile, row.guarantee.label, row.maturity.value,
                      "plug-in" if row.plugin else "built in")
    console.print(table)
