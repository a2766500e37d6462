"""Inline SVG line charts: a report opens from a file, offline, with no script and no CDN."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

from rules.display import BEIJING, ZONE_LABEL

PALETTE = ("#c0392b", "#2471a3", "#229954", "#b9770e", "#7d3c98", "#17a589", "#566573")


def _fmt_time(ts: float) -> str:
    """An axis label in Beijing time (the chart's title names the zone)."""
    return dt.datetime.fromtimestamp(ts, BEIJING).strftime("%H:%M:%S")


def _nice(lo: float, hi: float) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.01 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def line_chart(
    series: dict[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    width: int = 760,
    height: int = 240,
    y_format: str = "{:,.4g}",
    hlines: Sequence[tuple[float, str]] = (),
    markers: Sequence[tuple[float, str]] = (),
) -> str:
    """One chart: x is epoch seconds, each series a polyline with its points dotted; `hlines`
    are horizontal references (a target, a threshold), `markers` vertical (decision, fills)."""
    points = [(x, y) for pts in series.values() for x, y in pts if math.isfinite(y)]
    left, right, top, bottom = 70, 20, 28, 36
    w, h = width - left - right, height - top - bottom
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
        f'<text x="{width - right}" y="16" text-anchor="end" fill="#777">{ZONE_LABEL}</text>',
    ]
    if not points:
        out.append(f'<text x="{left}" y="{top + h / 2}">no data in the journal</text></svg>')
        return "".join(out)
    xs = [x for x, _ in points] + [m for m, _ in markers]
    ys = [y for _, y in points] + [v for v, _ in hlines]
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 1e-9:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = _nice(min(ys), max(ys))

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return top + h - (y - y0) / (y1 - y0) * h

    out.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#bbb"/>')
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        out.append(
            f'<line x1="{left}" x2="{left + w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
            f'stroke="#eee"/><text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">'
            f"{escape(y_format.format(y))}</text>"
        )
    for i in range(5):
        x = x0 + (x1 - x0) * i / 4
        anchor = ("start", "middle", "middle", "middle", "end")[i]
        out.append(
            f'<text x="{px(x):.1f}" y="{top + h + 16}" text-anchor="{anchor}">{_fmt_time(x)}</text>'
        )
    for value, label in hlines:
        out.append(
            f'<line x1="{left}" x2="{left + w}" y1="{py(value):.1f}" y2="{py(value):.1f}" '
            f'stroke="#888" stroke-dasharray="5,4"/><text x="{left + w - 4}" '
            f'y="{py(value) - 4:.1f}" text-anchor="end" fill="#555">{escape(label)}</text>'
        )
    for i, (x, label) in enumerate(markers):
        right = px(x) > left + w * 0.6  # labels on the right half read leftwards, inside
        tx, anchor = (px(x) - 3, "end") if right else (px(x) + 3, "start")
        out.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{top + h}" stroke="#999" '
            f'stroke-dasharray="2,3"/><text x="{tx:.1f}" y="{top + 12 + (i % 4) * 12}" '
            f'text-anchor="{anchor}" fill="#444">{escape(label)}</text>'
        )
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        good = sorted((x, y) for x, y in pts if math.isfinite(y))
        if not good:
            continue
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in good)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        out += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>' for x, y in good
        ]
        out.append(
            f'<text x="{left + 8 + i * 140}" y="{top + h + 30}" fill="{color}">■ {escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
