"""The checkpoint charts of `report.html` as inline SVG, on the same x axis as the timeline.

`progress_svg` plots the summed integer source positions of each `checkpoint.persisted` event
(an event with a non-integer position is skipped; the checkpoint ids are plotted instead when no
position is numeric), with a tick for each `checkpoint.committed` and `checkpoint.abandoned`.
`throughput_svg` plots how fast the summed position advanced between consecutive checkpoints: records
per second for Kafka offsets and memory-stream ids, row groups per second for Parquet files.
"""

from __future__ import annotations

from html import escape

from chaos.report.timeline import LEFT, PLOT_W, WIDTH, Timeline, fmt, nice_ticks, shading, title, x_axis, x_of
from drivers.sdk.events import Event


def checkpoint_series(timeline: Timeline) -> tuple[str, list[tuple[float, float, str]]]:
    """(y label, [(time, value, tooltip)]) from `checkpoint.persisted`: summed integer positions,
    skipping events with a non-integer position; the checkpoint ids if no position is numeric."""
    numeric, ids, any_int = [], [], False
    for t, e in timeline.of_kind(Event.CHECKPOINT_PERSISTED):
        cid = e.get("checkpoint_id")
        if isinstance(cid, int):
            ids.append((t, float(cid), f"{t:.2f}s: checkpoint {cid} persisted"))
        leaves = [v for split in (e.get("positions") or {}).values()
                  for v in (split.values() if isinstance(split, dict) else [split])]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in leaves):
            any_int = any_int or bool(leaves)
            tip = f"{t:.2f}s: checkpoint {cid} persisted at source position {sum(leaves):,}"
            numeric.append((t, float(sum(leaves)), tip))
    return ("source position (sum)", numeric) if any_int else ("checkpoint id", ids)


def _y_axis(high: float, y_of, label: str) -> list[str]:
    parts = []
    for tick in nice_ticks(high, 5):
        y = y_of(tick)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(tick)}</text>')
    parts.append(f'<text class="axis-label" x="14" y="{y_of(high / 2):.1f}" '
                 f'transform="rotate(-90 14 {y_of(high / 2):.1f})" text-anchor="middle">{escape(label)}</text>')
    return parts


def _chart(timeline: Timeline, css: str, height: int, high: float, label: str, body) -> str:
    top, bottom = 10, height - 30
    high = max(high, 1.0)

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * v / high
    parts = [f'<svg class="{css}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(label)}">']
    parts += shading(timeline, top, bottom) + x_axis(timeline.span, top, bottom) + _y_axis(high, y_of, label)
    parts += body(y_of, top, bottom)
    parts.append("</svg>")
    return "\n".join(parts)


def progress_svg(timeline: Timeline) -> str:
    label, series = checkpoint_series(timeline)
    span = timeline.span
    lows = min((v for _, v, _ in series), default=0.0)
    base = lows if label == "checkpoint id" and lows > 1000 else 0.0  # huge ids: plot relative to the first
    high = max([v - base for _, v, _ in series] + [1.0]) * 1.08

    def body(y_of, top: float, bottom: float) -> list[str]:
        parts = []
        points = " ".join(f"{x_of(t, span):.1f},{y_of(v - base):.1f}" for t, v, _ in series)
        if points:
            parts.append(f'<polyline class="series" points="{points}"/>')
        parts += [f'<circle class="point" cx="{x_of(t, span):.1f}" cy="{y_of(v - base):.1f}" r="3">'
                  f'{title(tip)}</circle>' for t, v, tip in series]
        for css, event, verb in (("commit", Event.CHECKPOINT_COMMITTED, "committed"),
                                 ("abandoned", Event.CHECKPOINT_ABANDONED, "abandoned")):
            for t, e in timeline.of_kind(event):
                x, tip = x_of(t, span), f"{t:.2f}s: checkpoint {e.get('checkpoint_id')} {verb}"
                parts.append(f'<line class="{css}" x1="{x:.1f}" y1="{bottom - 9}" x2="{x:.1f}" y2="{bottom}">'
                             f'{title(tip)}</line>')
        if not series:
            parts.append(f'<text class="note" x="{LEFT + 8}" y="{top + 20}">no checkpoint was persisted</text>')
        return parts
    return _chart(timeline, "progress", 240, high, label + (f" - {base:,.0f}" if base else ""), body)


def throughput_svg(timeline: Timeline) -> str | None:
    """Position units per second between consecutive checkpoints (a rewind after a restore shows no bar)."""
    label, series = checkpoint_series(timeline)
    if label == "checkpoint id" or len(series) < 2:
        return None
    span = timeline.span
    rates = [(t0, t1, (v1 - v0) / (t1 - t0)) for (t0, v0, _), (t1, v1, _) in zip(series, series[1:]) if t1 > t0]
    high = max([r for _, _, r in rates] + [1.0]) * 1.08

    def body(y_of, top: float, bottom: float) -> list[str]:
        parts = []
        for t0, t1, rate in rates:
            if rate <= 0:
                continue
            x0, x1, tip = x_of(t0, span), x_of(t1, span), f"{t0:.2f}s to {t1:.2f}s: {rate:,.0f} positions/s"
            parts.append(f'<rect class="rate" x="{x0 + 0.5:.1f}" y="{y_of(rate):.1f}" '
                         f'width="{max(x1 - x0 - 1, 1):.1f}" height="{bottom - y_of(rate):.1f}">{title(tip)}</rect>')
        return parts
    return _chart(timeline, "throughput", 160, high, "positions/s", body)
