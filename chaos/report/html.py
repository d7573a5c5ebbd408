"""`report.html`: one self-contained page per run (inline CSS and SVG, no scripts, no external files).

It shows the experiment, pipeline, guarantee, seed and overall verdict; a timeline of the faults
and the process crashes, kills, exits and restarts; the checkpointed source position, commits and
throughput over time; the verdict table; and relative links to the run's logs and result files.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chaos.report.charts import progress_svg, throughput_svg
from chaos.report.timeline import Timeline, timeline_svg

_RESULT_FILES = ("history.jsonl", "result.json", "junit.xml")
_OPTIONAL_FILES = ("schedule.txt", "resolved.json", "experiment.yaml", "job.json", "job-status.json")

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       margin: 0; background: #f4f5f8; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 20px 40px; }
header { display: grid; grid-template-columns: 1fr auto; gap: 8px 18px; align-items: center; background: #fff;
         border-radius: 8px; padding: 12px 18px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
header h1 { font-size: 21px; margin: 0; }
header dl { grid-column: 1 / 3; display: flex; flex-wrap: wrap; gap: 6px 34px; margin: 0; }
header dt { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: #6b7385; }
header dd { margin: 0; font-weight: 600; }
.badge { font-weight: 700; font-size: 18px; padding: 6px 16px; border-radius: 6px; color: #fff; }
.badge.pass { background: #2f9e44; } .badge.violation { background: #d6336c; }
.badge.inconclusive { background: #ae3ec9; } .badge.interrupted { background: #e67700; }
header .why { grid-column: 1 / 3; margin: 0; padding: 8px 12px; border-radius: 6px; background: #fff0f5; }
header .why.inconclusive { background: #f8f0fc; } header .why.interrupted { background: #fff4e6; }
header .why li { margin: 2px 0; }
header .why h2 { margin: 0 0 4px; font-size: 14px; } header .why ul { margin: 0; padding-left: 18px; }
section { background: #fff; border-radius: 8px; margin-top: 14px; padding: 10px 10px 6px;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h2 { font-size: 15px; margin: 2px 8px 6px; }
p.hint { margin: 0 8px 6px; color: #6b7385; font-size: 12px; }
svg { display: block; font: 11px system-ui, sans-serif; }
svg .grid { stroke: #e6e8ee; } svg .axis { stroke: #9aa1b1; } svg .lane-line { stroke: #cfd4de; stroke-dasharray: 3 3; }
svg .tick { fill: #5b6273; } svg .lane { fill: #1d2330; font-weight: 600; font-size: 12px; }
svg .axis-label { fill: #5b6273; font-size: 11px; } svg .note { fill: #8a91a2; font-style: italic; }
svg .fault-label { fill: #fff; font-weight: 600; paint-order: stroke; stroke: rgba(0,0,0,.25); stroke-width: 2px; }
svg .workload rect { fill: #4c6ef5; fill-opacity: .75; }
svg .m-crash { stroke: #e03131; stroke-width: 3; fill: none; } svg .m-kill { fill: #862e2e; }
svg .m-exit { fill: #f59f00; stroke: #fff; } svg .m-restart { fill: #2f9e44; } svg .m-drained { fill: #4c6ef5; }
svg .m-joined { fill: #1c7ed6; stroke: #fff; } svg .ready-line { stroke: #1c7ed6; stroke-dasharray: 5 4; }
svg .unfired { fill: #c92a2a; font-size: 11px; font-style: italic; }
svg .series { fill: none; stroke: #4c6ef5; stroke-width: 2; } svg .point { fill: #4c6ef5; stroke: #fff; }
svg .commit { stroke: #2f9e44; stroke-width: 2; } svg .abandoned { stroke: #e03131; stroke-width: 2; }
svg .rate { fill: #74c0fc; } svg .alive { fill: #c3cad8; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-top: 1px solid #e6e8ee; vertical-align: top; }
th { font-size: 12px; color: #6b7385; border-top: none; }
td.status { font-weight: 700; text-transform: uppercase; }
tr.pass td.status { color: #2f9e44; } tr.fail td.status { color: #d6336c; } tr.info td.status { color: #e67700; }
tr.inconclusive td.status { color: #ae3ec9; } tr.inconclusive { background: #f8f0fc; }
tr.fail { background: #fff0f5; }
td code, li code { font-size: 12px; }
ul.files { columns: 3; margin: 4px 0 8px; }
"""


def _text(value: Any) -> str:
    return escape("—" if value is None or value == "" else str(value))


def _why(result: dict[str, Any], status: str) -> str:
    """Above the fold: why the run did not pass, in the failing verdicts' own words."""
    wanted = {"violation": "fail", "inconclusive": "inconclusive", "interrupted": "inconclusive"}.get(status)
    if wanted is None:
        return ""
    reasons = [v for v in result.get("verdicts") or [] if v.get("status") == wanted]
    heading = {"violation": "Why it failed: the invariants that broke",
               "inconclusive": "Why it is inconclusive: the experiment did not do what it said (no verdict on the "
                               "connector)",
               "interrupted": f"Interrupted by {_text(result.get('interrupted_by'))}: the run was cut short, so "
                              "no verdict is held against the connector"}[status]
    items = "".join(f"<li><code>{_text(v.get('invariant'))}</code>: {_text(v.get('summary'))}</li>" for v in reasons)
    return f'<div class="why {status}" id="why"><h2>{heading}</h2><ul>{items}</ul></div>'


def _header(run_dir: Path, result: dict[str, Any]) -> str:
    status = str(result.get("status") or "pass")
    fields = [("pipeline", result.get("pipeline")), ("guarantee", result.get("guarantee")),
              ("seed", result.get("seed")), ("restarts", _restarts(result)),
              ("run", result.get("run_id") or run_dir.name), ("workload", _seconds(result.get("workload_seconds"))),
              ("drain", _seconds(result.get("drain_seconds")))]
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{_text(v)}</dd></div>" for k, v in fields)
    return (f'<header><h1>{_text(result.get("experiment") or run_dir.name)}</h1>'
            f'<span class="badge {escape(status)}" id="overall">{escape(status.upper())}</span>'
            f'{_why(result, status)}<dl>{cells}</dl></header>')


def _restarts(result: dict[str, Any]) -> str | None:
    restarts = result.get("restarts")
    if isinstance(restarts, dict):
        return ", ".join(f"{k} \u00d7{v}" for k, v in restarts.items() if v) or "none"
    return result.get("pipeline_restarts")


def _seconds(value: Any) -> str | None:
    return f"{value:.1f} s" if isinstance(value, (int, float)) else None


def _verdicts(result: dict[str, Any]) -> str:
    rows = []
    for v in result.get("verdicts") or []:
        status = str(v.get("status", "?"))
        counts = "<br>".join(f"{escape(str(k))}: <b>{escape(str(n))}</b>" for k, n in (v.get("counts") or {}).items())
        examples = ", ".join(escape(str(e)) for e in v.get("examples") or [])
        rows.append(f'<tr class="verdict {escape(status)}"><td><code>{_text(v.get("invariant"))}</code></td>'
                    f'<td class="status">{escape(status)}</td><td>{_text(v.get("summary"))}</td>'
                    f'<td>{counts}</td><td>{examples}</td></tr>')
    if not rows:
        rows.append('<tr><td colspan="5">no verdict was recorded</td></tr>')
    return ('<table><thead><tr><th>invariant</th><th>status</th><th>summary</th><th>counts</th>'
            f'<th>examples (record ids)</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _link(href: str, label: str) -> str:
    return f'<li><a href="{escape(quote(href))}"><code>{escape(label)}</code></a></li>'


def _files(run_dir: Path) -> str:
    results = [_link(name, name) for name in _RESULT_FILES]
    results += [_link(name, name) for name in _OPTIONAL_FILES if (run_dir / name).exists()]
    logs_dir = run_dir / "logs"
    logs = sorted(p.name for p in logs_dir.iterdir()) if logs_dir.is_dir() else []
    log_items = "".join(_link(f"logs/{name}", name) for name in logs) or "<li>no logs</li>"
    return (f'<h2>Run files</h2><ul class="files">{"".join(results)}</ul>'
            f'<h2>Logs</h2><ul class="files logs">{log_items}</ul>')


def render_html(run_dir: Path, result: dict[str, Any], history: list[dict[str, Any]]) -> str:
    timeline = Timeline.of(history, result.get("crash_points") or {})
    throughput = throughput_svg(timeline)
    title = f"chaos: {result.get('experiment') or run_dir.name} {str(result.get('status', '')).upper()}"
    sections = [
        '<section><h2>Timeline</h2><p class="hint">Faults are shaded from injection to heal (hatched: it met no '
        'pipeline traffic, so it proves nothing); markers show process crashes, kills, exits, restarts and '
        'workers joining; the dashed line is when the whole pipeline was first ready, and armed crash points '
        'that never fired are listed on their lane. Hover for details; the whole schedule is in '
        '<a href="schedule.txt"><code>schedule.txt</code></a>.</p>' + timeline_svg(timeline) + "</section>",
        '<section><h2>Checkpoints and commits</h2><p class="hint">Each point is a persisted checkpoint at its '
        'summed integer source positions (its id when no position is numeric); green ticks are commits, red ticks '
        'abandoned rounds.</p>'
        + progress_svg(timeline) + "</section>",
    ]
    if throughput:
        sections.append('<section><h2>Source throughput</h2><p class="hint">How fast the summed source position '
                        'advanced between consecutive checkpoints: records per second for Kafka offsets and '
                        'memory streams, row groups per second for Parquet files. A rewind shows no bar.</p>'
                        + throughput + "</section>")
    sections.append(f"<section><h2>Verdicts</h2>{_verdicts(result)}</section>")
    sections.append(f"<section>{_files(run_dir)}</section>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<style>{_CSS}</style></head><body><main>{_header(run_dir, result)}\n' + "\n".join(sections)
            + "</main></body></html>\n")


def write_html(run_dir: Path, result: dict, history: list[dict]) -> Path:
    """Write `run_dir/report.html` from `result` (as in `result.json`) and the run history; return its path."""
    path = run_dir / "report.html"
    tmp = run_dir / "report.html.tmp"
    tmp.write_text(render_html(run_dir, result, history), encoding="utf-8")
    tmp.replace(path)
    return path
