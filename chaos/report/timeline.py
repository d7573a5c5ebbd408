"""The timeline plot of `report.html` as inline SVG, and the x axis shared with the charts (`charts.py`).

`timeline_svg` draws the faults as shaded, labelled bands (from `fault.inject` to the `fault.heal`
with the same `index`; a fault never healed runs to the end; hatched when it met no pipeline
traffic), the workload, the moment the whole pipeline was first ready (`pipeline.ready`), and one
lane per supervised process: a bar while an incarnation runs, and markers for crashes (`crash`),
kills (`process.kill`, `process.terminate`), exits (`process.exit`), restarts (`process.start` with
an incarnation above 1) and a worker joining (`worker.restored`). Armed crash points that never
fired are written on their lane. x is seconds since `run.start`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from html import escape
from typing import Any

from chaos.checkers.traffic import quiet_faults
from drivers.sdk.events import Event

WIDTH, LEFT, RIGHT = 1180, 120, 24
PLOT_W = WIDTH - LEFT - RIGHT
FAULT_ROW, LANE = 22, 28
NETWORK_COLOUR, PROCESS_COLOUR = "#e8912d", "#8e5bd0"
PROCESS_FAULTS = {"kill", "terminate", "pause", "crash"}


@dataclass
class Band:
    index: int
    kind: str
    target: str
    start: float
    end: float
    healed: bool
    quiet: str | None = None
    """Why the fault met no pipeline traffic, when it met none."""
    row: int = 0

    @property
    def label(self) -> str:
        return (f"{self.kind} {self.target}" + ("" if self.healed else " (not healed)")
                + (" (no traffic)" if self.quiet else ""))

    @property
    def tip(self) -> str:
        return (f"fault {self.index}: {self.label}, {self.start:.2f}s to {self.end:.2f}s"
                + (f": it met no pipeline traffic ({self.quiet})" if self.quiet else ""))

    @property
    def colour(self) -> str:
        return PROCESS_COLOUR if self.kind in PROCESS_FAULTS else NETWORK_COLOUR


@dataclass
class Timeline:
    """The history in seconds since `run.start`."""

    events: list[tuple[float, dict[str, Any]]]
    span: float
    bands: list[Band] = field(default_factory=list)
    armed: dict[str, dict[str, int]] = field(default_factory=dict)
    """The crash points the experiment armed, by process: point -> the hit that fires."""

    @classmethod
    def of(cls, history: list[dict[str, Any]], armed: dict[str, dict[str, int]] | None = None) -> "Timeline":
        timed = [e for e in history if isinstance(e.get("ts"), (int, float))]
        starts = [e["ts"] for e in timed if e.get("event") == Event.RUN_START]
        t0 = starts[0] if starts else min((e["ts"] for e in timed), default=0.0)
        events = sorted(((e["ts"] - t0, e) for e in timed), key=lambda p: p[0])
        span = max([t for t, _ in events] + [1.0])
        timeline = cls(events, span, armed=dict(armed or {}))
        timeline.bands = timeline._bands(quiet_faults(history))
        return timeline

    def of_kind(self, *names: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events if e.get("event") in names]

    def _bands(self, quiet: dict[int, str]) -> list[Band]:
        heals = {e.get("index"): t for t, e in self.of_kind(Event.FAULT_HEAL)}
        bands = [Band(e.get("index", -1), str(e.get("kind", "?")), str(e.get("target", "?")), t,
                      heals.get(e.get("index"), self.span), e.get("index") in heals, quiet.get(e.get("index")))
                 for t, e in self.of_kind(Event.FAULT_INJECT)]
        row_ends: list[float] = []  # pack labelled bars into rows so that labels never overlap
        for band in bands:
            x0 = x_of(band.start, self.span)
            x1 = max(x_of(band.end, self.span), x0 + 8 + 6.6 * len(fitted(band.label)))
            band.row = next((i for i, end in enumerate(row_ends) if end + 6 < x0), len(row_ends))
            row_ends[band.row:band.row + 1] = [x1]
        return bands


LABEL_CHARS = 40
"""A fault's label is cut to this many characters (the tooltip keeps it whole)."""


def fitted(label: str) -> str:
    """The label as drawn: whole when short, else cut with an ellipsis."""
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def x_of(t: float, span: float) -> float:
    return LEFT + PLOT_W * max(0.0, min(t, span)) / span


def nice_ticks(high: float, count: int = 10) -> list[float]:
    high = max(high, 1e-9)
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(high / step + 1e-9) + 1)]


def fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:g}"


def title(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def x_axis(span: float, y_top: float, y_bottom: float) -> list[str]:
    parts = [f'<line class="axis" x1="{LEFT}" y1="{y_bottom}" x2="{LEFT + PLOT_W}" y2="{y_bottom}"/>']
    for tick in nice_ticks(span):
        x = x_of(tick, span)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{y_top}" x2="{x:.1f}" y2="{y_bottom}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{y_bottom + 14}" text-anchor="middle">{fmt(tick)}s</text>')
    return parts


def shading(timeline: Timeline, y_top: float, y_bottom: float) -> list[str]:
    parts = []
    for b in timeline.bands:
        x0, x1 = x_of(b.start, timeline.span), x_of(b.end, timeline.span)
        parts.append(f'<rect class="fault-band" data-index="{b.index}" x="{x0:.1f}" y="{y_top}" '
                     f'width="{max(x1 - x0, 2):.1f}" height="{y_bottom - y_top}" fill="{b.colour}" '
                     f'fill-opacity="0.16">{title(f"{b.label}: {b.start:.1f}s to {b.end:.1f}s")}</rect>')
    return parts


def _lane_order(name: str) -> tuple[int, int, str]:
    number = re.search(r"(\d+)$", name)
    return (0 if name == "coordinator" else 1, int(number.group(1)) if number else 0, name)


def _marker(kind: str, x: float, y: float, tip: str, css: str = "marker") -> str:
    shapes = {
        "crash": f'<path class="m-crash" d="M{x - 6:.1f},{y - 6} l12,12 m0,-12 l-12,12"/>',
        "kill": f'<path class="m-kill" d="M{x - 6:.1f},{y - 6} h12 l-6,11 z"/>',
        "exit": f'<circle class="m-exit" cx="{x:.1f}" cy="{y}" r="5"/>',
        "restart": f'<path class="m-restart" d="M{x - 6:.1f},{y + 6} h12 l-6,-11 z"/>',
        "drained": f'<path class="m-drained" d="M{x:.1f},{y - 6} l6,6 l-6,6 l-6,-6 z"/>',
        "joined": f'<circle class="m-joined" cx="{x:.1f}" cy="{y}" r="4"/>',
    }
    return f'<g class="{css} {kind}">{title(tip)}{shapes[kind]}</g>'


def _process_markers(timeline: Timeline) -> list[tuple[str, float, str, str]]:
    """(lane, time, marker kind, tooltip) for each crash, kill, exit and restart."""
    found = []
    for t, e in timeline.events:
        name, event = str(e.get("process", "")), e.get("event")
        if event == Event.CRASH:
            found.append((name, t, "crash", f"{name} crashed at {e.get('point')} (hit {e.get('hit')})"))
        elif event in (Event.PROCESS_KILL, Event.PROCESS_TERMINATE):
            found.append((name, t, "kill", f"{name}: {event} (pid {e.get('pid')})"))
        elif event == Event.PROCESS_EXIT:
            found.append((name, t, "exit", f"{name} exited with code {e.get('code')}"))
        elif event == Event.PROCESS_START and (e.get("incarnation") or 1) > 1:
            found.append((name, t, "restart", f"{name} restarted (incarnation {e.get('incarnation')})"))
        elif event == Event.WORKER_RESTORED:
            worker = str(e.get("source"))
            restored = e.get("checkpoint_id")
            found.append((worker, t, "joined", f"{worker} joined, " + (
                f"restored checkpoint {restored}" if restored is not None else "from the start")))
    return [(n, t, k, f"{t:.2f}s: {tip}") for n, t, k, tip in found]


def _alive(timeline: Timeline) -> list[tuple[str, float, float, int]]:
    """(process, from, to, incarnation): each incarnation from its start to its exit, kill or stop."""
    running: dict[str, tuple[float, int]] = {}
    spans = []
    for t, e in timeline.events:
        name, event = str(e.get("process", "")), e.get("event")
        if event == Event.PROCESS_START:
            running[name] = (t, e.get("incarnation") or 1)
        elif event in (Event.PROCESS_EXIT, Event.PROCESS_KILL, Event.PROCESS_TERMINATE, Event.PROCESS_STOP) and name in running:
            start, incarnation = running.pop(name)
            spans.append((name, start, t, incarnation))
    spans += [(name, start, timeline.span, inc) for name, (start, inc) in running.items()]
    return spans


def timeline_svg(timeline: Timeline) -> str:
    span, bands = timeline.span, timeline.bands
    markers = _process_markers(timeline)
    lanes = sorted({str(e.get("process")) for _, e in timeline.of_kind(Event.PROCESS_START)}
                   | {m[0] for m in markers}, key=_lane_order)
    rows = max([b.row + 1 for b in bands] + [1])
    top = 8
    lanes_top = top + rows * FAULT_ROW + 6
    lane_y = {name: lanes_top + LANE * (i + 1.5) for i, name in enumerate(lanes)}
    bottom = lanes_top + LANE * (len(lanes) + 1)
    height = bottom + 48
    parts = [f'<svg class="timeline" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
             f'role="img" aria-label="fault timeline">']
    parts += x_axis(span, top, bottom)
    parts += shading(timeline, top, bottom)
    parts.append(f'<text class="lane" x="{LEFT - 8}" y="{top + 15}" text-anchor="end">faults</text>')
    if not bands:
        parts.append(f'<text class="note" x="{LEFT + 6}" y="{top + 15}">no fault was injected</text>')
    parts.append('<defs><pattern id="quiet" width="6" height="6" patternUnits="userSpaceOnUse" '
                 'patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" fill-opacity="0.6"/>'
                 '</pattern></defs>')
    for b in bands:
        x0, x1, y = x_of(b.start, span), x_of(b.end, span), top + b.row * FAULT_ROW
        hatch = (f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(x1 - x0, 2):.1f}" height="{FAULT_ROW - 4}" '
                 f'rx="3" fill="url(#quiet)"/>') if b.quiet else ""
        parts.append(f'<g class="fault{" quiet" if b.quiet else ""}">{title(b.tip)}'
                     f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(x1 - x0, 2):.1f}" height="{FAULT_ROW - 4}" '
                     f'rx="3" fill="{b.colour}" fill-opacity="0.85"/>{hatch}'
                     f'<text class="fault-label" x="{x0 + 4:.1f}" y="{y + 15}">'
                     f'{escape(fitted(b.label))}</text></g>')
    for t, _ in timeline.of_kind(Event.PIPELINE_READY)[:1]:
        x = x_of(t, span)
        parts.append(f'<g class="ready">{title(f"{t:.2f}s: the pipeline is ready (every process joined)")}'
                     f'<line class="ready-line" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>'
                     f'<text class="tick" x="{x + 3:.1f}" y="{bottom - 4}">ready</text></g>')
    # The workload lane: producing, then the drain.
    wy = lanes_top + LANE * 0.5
    parts.append(f'<text class="lane" x="{LEFT - 8}" y="{wy + 4}" text-anchor="end">workload</text>')
    starts, ends = timeline.of_kind(Event.WORKLOAD_START), timeline.of_kind(Event.WORKLOAD_END)
    if starts:
        t1 = ends[0][0] if ends else span
        total = ends[0][1].get("produced") if ends else starts[0][1].get("records")
        x0, x1 = x_of(starts[0][0], span), x_of(t1, span)
        parts.append(f'<g class="workload">{title(f"producing {total} records, {starts[0][0]:.2f}s to {t1:.2f}s")}'
                     f'<rect x="{x0:.1f}" y="{wy - 6}" width="{max(x1 - x0, 2):.1f}" height="12" rx="3"/></g>')
    else:
        parts.append(f'<text class="note" x="{LEFT + 6}" y="{wy + 4}">no producer: the source is read directly</text>')
    for t, e in timeline.of_kind(Event.RUN_DRAINED):
        tip = f"{t:.2f}s: drained ({e.get('seconds')}s after the workload)"
        parts.append(_marker("drained", x_of(t, span), wy, tip))
    for name in lanes:
        y = lane_y[name]
        parts.append(f'<line class="lane-line" x1="{LEFT}" y1="{y}" x2="{LEFT + PLOT_W}" y2="{y}"/>'
                     f'<text class="lane" x="{LEFT - 8}" y="{y + 4}" text-anchor="end">{escape(name)}</text>')
    for name, t0, t1, incarnation in _alive(timeline):
        x0, x1 = x_of(t0, span), x_of(t1, span)
        parts.append(f'<rect class="alive" x="{x0:.1f}" y="{lane_y[name] - 3}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="6" rx="2">{title(f"{name} #{incarnation} running, {t0:.2f}s to {t1:.2f}s")}</rect>')
    last_x: dict[str, float] = {}
    for name, t, kind, tip in markers:  # markers closer than 12px are nudged apart to stay visible
        x = max(x_of(t, span), last_x.get(name, -99.0) + 12)
        last_x[name] = x
        parts.append(_marker(kind, x, lane_y.get(name, bottom), tip))
    for name, unfired in _unfired(timeline).items():
        if name in lane_y:
            text = "armed, never fired: " + ", ".join(f"{point} (hit {hit})" for point, hit in unfired)
            parts.append(f'<text class="unfired" x="{LEFT + PLOT_W - 4}" y="{lane_y[name] - 8}" '
                         f'text-anchor="end">{escape(text)}</text>')
    parts.append(f'<text class="tick" x="{LEFT + PLOT_W}" y="{bottom + 28}" text-anchor="end">'
                 f'seconds since run.start</text>')
    parts += _legend(bottom + 28)
    parts.append("</svg>")
    return "\n".join(parts)


def _unfired(timeline: Timeline) -> dict[str, list[tuple[str, int]]]:
    """The armed crash points that never fired, by process."""
    fired = {(str(e.get("process")), e.get("point")) for _, e in timeline.of_kind(Event.CRASH)}
    return {process: missing for process, points in timeline.armed.items()
            if (missing := [(p, hit) for p, hit in points.items() if (process, p) not in fired])}


def _legend(y: float) -> list[str]:
    items = [("crash", "crash"), ("kill", "kill / terminate"), ("exit", "exit"), ("restart", "restart"),
             ("joined", "worker joined"), ("drained", "drained")]
    parts, x = [], LEFT
    for colour, text in ((NETWORK_COLOUR, "network fault"), (PROCESS_COLOUR, "process fault")):
        parts.append(f'<rect x="{x}" y="{y - 9}" width="14" height="10" rx="2" fill="{colour}"/>'
                     f'<text class="tick" x="{x + 19}" y="{y}">{text}</text>')
        x += 30 + 6.5 * len(text)
    for kind, text in items:
        parts.append(_marker(kind, x + 6, y - 4, text, "legend"))
        parts.append(f'<text class="tick" x="{x + 16}" y="{y}">{text}</text>')
        x += 32 + 6.5 * len(text)
    return parts


