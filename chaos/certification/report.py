"""The certification report: `certification.json` (the record), and the same in Markdown and HTML.

It holds each connector's declared and computed maturity label, each row's effective guarantee,
pass or fail for every scenario with links to its run directories, and the mutants' kill rate.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chaos.certification.maturity import compute_labels
from chaos.certification.mutants import EVERY_MUTANT
from chaos.certification.scenarios import SCENARIOS, Status, applicability, certification_rows, slug
from chaos.certification.suite import Outcome, SuiteRun

REPORT_SCHEMA = "chaos.certification/v1"


def build_report(suite: SuiteRun) -> dict[str, Any]:
    def link(outcome: Outcome) -> str | None:
        return None if outcome.run_dir is None else str(outcome.run_dir.relative_to(suite.directory))

    rows, status_of = [], {}
    for row in suite.rows:
        scenarios = []
        for scenario in SCENARIOS:
            a = applicability(row, scenario)
            runs = [o for key, o in suite.cases.items() if key.startswith(f"{slug(row)}/{scenario.slug}@")]
            status = a.status.value
            if a.status == Status.APPLIES:
                status = case_status([o.status for o in runs])
                status_of[(slug(row), scenario.slug)] = status
            scenarios.append({"scenario": scenario.slug, "number": scenario.number, "status": status,
                              "reason": a.reason, "runs": [
                                  {"run_dir": link(o), "status": o.status, "failed": o.failed,
                                   "message": o.message, "seconds": round(o.seconds, 1)} for o in runs]})
        rows.append({"row": slug(row), "pipeline": row.describe(), "guarantee": row.guarantee.label,
                     "status": case_status([s["status"] for s in scenarios if s["status"] in CASE_STATUSES]),
                     "scenarios": scenarios})
    labels = compute_labels(suite.rows, status_of)
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "mode": "quick" if suite.quick else "full",
        "wall_seconds": round(suite.seconds, 1),
        "rows": rows,
        "connectors": [{"name": label.connector.name, "role": label.connector.role, "title": label.connector.title,
                        "declared": label.declared.value,
                        "computed": label.computed.value if label.computed else None,
                        "why": label.why, "error": label.error} for label in labels],
        "errors": [f"{label.connector.title} ({label.connector.role}) is labelled Certified but {label.why}"
                   for label in labels if label.error],
    }
    if suite.mutants is not None:
        def control(outcome: Outcome) -> dict[str, Any] | None:
            c = outcome.control
            return None if c is None else {"status": c.status, "failed": c.failed, "run_dir": link(c)}

        mutants = [{"mutant": m.name, "scenario": m.scenario, "bug": m.bug, "experiment": str(m.path),
                    "caught_by": m.caught_by, "repeats": m.repeats, "status": suite.mutants[m.name].status,
                    "failed": suite.mutants[m.name].failed, "run_dir": link(suite.mutants[m.name]),
                    "message": suite.mutants[m.name].message, "control": control(suite.mutants[m.name])}
                   for m in EVERY_MUTANT if m.name in suite.mutants]
        killed = sum(m["status"] == "killed" for m in mutants)
        report["mutants"] = {"killed": killed, "total": len(mutants),
                             "kill_rate": round(killed / len(mutants), 3) if mutants else None, "results": mutants}
        report["errors"] += [f"mutant {m['mutant']} ({m['bug']}) was not caught by {m['caught_by']}"
                             for m in mutants if m["status"] == "survived"]
        report["errors"] += [f"mutant {m['mutant']}: {m['message']}" for m in mutants
                             if m["status"] == "invalid-control"]
    outcomes = [*suite.cases.values(), *(suite.mutants or {}).values()]
    report["environment_errors"] = [f"{o.name}: {o.message}" for o in outcomes if o.status == "error"]
    report["inconclusive"] = [f"{o.name}: {o.message}" for o in outcomes if o.status == "inconclusive"]
    report["status"] = ("fail" if report["errors"] else "error" if report["environment_errors"]
                        else "inconclusive" if report["inconclusive"] else "pass")
    return report


CASE_STATUSES = ("pass", "fail", "error", "inconclusive")


def case_status(statuses: list[str]) -> str:
    """A scenario's (or a row's) status from its runs': one real failure fails it; otherwise a run
    that ended in an environment error (`error`) or did not do what it said (`inconclusive`) leaves
    it undecided, which never lowers a label."""
    if not statuses or "fail" in statuses:
        return "fail"
    return next((s for s in ("error", "inconclusive") if s in statuses), "pass")


def write_reports(directory: Path, report: dict[str, Any]) -> None:
    (directory / "certification.json").write_text(json.dumps(report, indent=2))
    (directory / "certification.md").write_text(markdown(report))
    (directory / "certification.html").write_text(to_html(report))


def _cell(scenario: dict[str, Any]) -> str:
    return {"pass": "pass", "fail": "**FAIL**", "error": "*error*", "inconclusive": "*inconclusive*", "n/a": "n/a",
            "not covered": "not covered"}[scenario["status"]]


def _runs(mutant: dict[str, Any]) -> str:
    """How many runs with the bug a timing-sensitive mutant needed, e.g. ` (3 runs)`."""
    repeats = mutant.get("repeats", 1)
    return f" ({repeats} runs)" if repeats > 1 and mutant["status"] == "killed" else ""


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Certification ({report['mode']}): {report['status'].upper()}", "",
             f"Wall time: {report['wall_seconds']} s.", ""]
    lines += ["## Connectors", "", "| connector | role | declared | computed | why |", "|---|---|---|---|---|"]
    lines += [f"| {c['title']} | {c['role']} | {c['declared']} | {c['computed'] or 'not assessed'} | {c['why']} |"
              for c in report["connectors"]]
    lines += ["", "## Rows", "", "| row | guarantee | " + " | ".join(s.slug for s in SCENARIOS) + " |",
              "|---|---|" + "---|" * len(SCENARIOS)]
    for row in report["rows"]:
        lines.append(f"| {row['row']} | {row['guarantee']} | " + " | ".join(_cell(s) for s in row["scenarios"]) + " |")
    lines += ["", "## Runs", ""]
    for row in report["rows"]:
        for s in row["scenarios"]:
            for run in s["runs"]:
                detail = ", ".join(run["failed"]) or run["message"]
                lines.append(f"- {row['row']} / {s['scenario']}: {run['status']} ({run['seconds']} s) "
                             f"[{run['run_dir']}]({run['run_dir']})" + (f": {detail}" if detail else ""))
    if "mutants" in report:
        m = report["mutants"]
        lines += ["", f"## Mutants: {m['killed']} of {m['total']} killed", "",
                  "| mutant | scenario | bug | caught by | result | control run (no bug) |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['mutant']} | {r['scenario']} | {r['bug']} | {r['caught_by']} | {r['status']}{_runs(r)} | "
                  f"{(r['control'] or {}).get('status', 'not run')} |" for r in m["results"]]
    if report["errors"]:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in report["errors"]]
    if report["environment_errors"]:
        lines += ["", "## Environment errors (not the connectors' fault; no label lowered)", ""]
        lines += [f"- {e}" for e in report["environment_errors"]]
    if report["inconclusive"]:
        lines += ["", "## Inconclusive runs (the experiment did not do what it said; no label lowered)", ""]
        lines += [f"- {e}" for e in report["inconclusive"]]
    return "\n".join(lines) + "\n"


_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.pass,.killed,.Certified{background:#dfd}"
        ".fail,.survived,.error{background:#fdd}.na{color:#888}.uncovered,.Preview{background:#ffd}")


def to_html(report: dict[str, Any]) -> str:
    e = html.escape

    def scenario_cell(s: dict[str, Any]) -> str:
        css = {"n/a": "na", "not covered": "uncovered"}.get(s["status"], s["status"])
        links = " ".join(f'<a href="{e(r["run_dir"])}/report.html">{i + 1}</a>'
                         for i, r in enumerate(s["runs"]) if r["run_dir"])
        return f'<td class="{css}" title="{e(s["reason"])}">{e(s["status"])} {links}</td>'

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Certification</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Certification ({e(report['mode'])}): {e(report['status'].upper())}</h1>",
             f"<p>Wall time: {report['wall_seconds']} s.</p><h2>Connectors</h2><table>",
             "<tr><th>connector</th><th>role</th><th>declared</th><th>computed</th><th>why</th></tr>"]
    parts += [f"<tr><td>{e(c['title'])}</td><td>{e(c['role'])}</td><td>{e(c['declared'])}</td>"
              f"<td class='{e(c['computed'] or '')}'>{e(c['computed'] or 'not assessed')}</td><td>{e(c['why'])}</td></tr>"
              for c in report["connectors"]]
    parts += ["</table><h2>Rows</h2><table><tr><th>row</th><th>guarantee</th>"
              + "".join(f"<th>{s.number}. {e(s.title)}</th>" for s in SCENARIOS) + "</tr>"]
    parts += [f"<tr><td>{e(r['row'])}</td><td>{e(r['guarantee'])}</td>"
              + "".join(scenario_cell(s) for s in r["scenarios"]) + "</tr>" for r in report["rows"]]
    parts.append("</table>")
    if "mutants" in report:
        m = report["mutants"]
        parts += [f"<h2>Mutants: {m['killed']} of {m['total']} killed</h2><table>",
                  "<tr><th>mutant</th><th>scenario</th><th>bug</th><th>caught by</th><th>result</th>"
                  "<th>control run (no bug)</th></tr>"]
        for r in m["results"]:
            control = r["control"] or {}
            parts.append(f"<tr><td>{e(r['mutant'])}</td><td>{e(r['scenario'])}</td><td>{e(r['bug'])}</td>"
                         f"<td>{e(r['caught_by'])}</td><td class='{e(r['status'])}'>{e(r['status'] + _runs(r))}"
                         + (f' <a href="{e(r["run_dir"])}/report.html">run</a>' if r["run_dir"] else "") + "</td>"
                         f"<td class='{e(control.get('status', ''))}'>{e(control.get('status', 'not run'))}"
                         + (f' <a href="{e(control["run_dir"])}/report.html">run</a>' if control.get("run_dir") else "")
                         + "</td></tr>")
        parts.append("</table>")
    if report["errors"]:
        parts += ["<h2>Errors</h2><ul>"] + [f"<li>{e(x)}</li>" for x in report["errors"]] + ["</ul>"]
    if report["environment_errors"]:
        parts += ["<h2>Environment errors (not the connectors' fault; no label lowered)</h2><ul>"]
        parts += [f"<li>{e(x)}</li>" for x in report["environment_errors"]] + ["</ul>"]
    if report["inconclusive"]:
        parts += ["<h2>Inconclusive runs (the experiment did not do what it said; no label lowered)</h2><ul>"]
        parts += [f"<li>{e(x)}</li>" for x in report["inconclusive"]] + ["</ul>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def applicability_markdown() -> str:
    """The table of which scenario applies to which row, and why (docs/certification.md holds it)."""
    lines = ["| row | scenario | applies | why |", "|---|---|---|---|"]
    for row in (r for r in certification_rows() if not r.plugin):
        for scenario in SCENARIOS:
            a = applicability(row, scenario)
            lines.append(f"| {slug(row)} | {scenario.number}. {scenario.slug} | {a.status.value} | {a.reason} |")
    return "\n".join(lines) + "\n"


def print_plan(console: Console) -> None:
    table = Table(title="certification scenarios by row", title_justify="left")
    for column in ("row", "scenario", "applies", "why"):
        table.add_column(column)
    style = {Status.APPLIES: "green", Status.NOT_APPLICABLE: "dim", Status.NOT_COVERED: "yellow"}
    for row in certification_rows():
        for scenario in SCENARIOS:
            a = applicability(row, scenario)
            table.add_row(slug(row), f"{scenario.number}. {scenario.slug}", f"[{style[a.status]}]{a.status.value}[/]",
                          a.reason)
    console.print(table)


def print_summary(console: Console, report: dict[str, Any], directory: Path) -> None:
    table = Table(title=f"certification ({report['mode']}): {report['status'].upper()}", title_justify="left")
    table.add_column("row")
    for s in SCENARIOS:
        table.add_column(str(s.number))
    style = {"pass": "green", "fail": "bold red", "error": "magenta", "inconclusive": "magenta", "n/a": "dim",
             "not covered": "yellow"}
    for row in report["rows"]:
        table.add_row(row["row"], *[f"[{style[s['status']]}]{s['status']}[/]" for s in row["scenarios"]])
    console.print(table)
    for c in report["connectors"]:
        if c["computed"] is not None:
            console.print(f"{c['title']} ({c['role']}): {c['computed']}", highlight=False)
    if "mutants" in report:
        m = report["mutants"]
        console.print(f"mutants: {m['killed']} of {m['total']} killed (kill rate {m['kill_rate']:.0%})")
    for error in report["errors"]:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
    for error in report["environment_errors"]:
        console.print(f"[magenta]environment error (no label lowered):[/] {error}", highlight=False)
    for error in report["inconclusive"]:
        console.print(f"[magenta]inconclusive (no label lowered):[/] {error}", highlight=False)
    console.print(f"report: {directory / 'certification.html'}")
