"""Figures as a risk manager reads them: 80.4%, ¥1,234,567.89, 2026-12-03 09:31:05 (北京时间).

One place, so the CLI, the reports, the notifications and the console print the same words for
the same figure. Past the line is spelt out: an account with equity ≤ 0 has a risk degree of +inf
in the figures, which reads "穿仓/past line" here rather than "inf%".
"""

from __future__ import annotations

import datetime as dt
import math

BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")
ZONE_LABEL = "北京时间"


def percent(value: float, digits: int = 1) -> str:
    """A ratio as a percentage: 0.8044 → "80.4%"; +inf (equity ≤ 0) → "past line"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "past line" if value > 0 else "-inf"
    return f"{value * 100:.{digits}f}%"


def yuan(value: float, digits: int = 2) -> str:
    """An amount in yuan with thousands separators: 1234567.891 → "¥1,234,567.89"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    sign = "-" if value < 0 else ""
    return f"{sign}¥{abs(value):,.{digits}f}"


def beijing(ts: float | None, millis: bool = False) -> str:
    """An epoch in Beijing time, the zone named: "2026-12-03 09:31:05 北京时间"."""
    if ts is None or not math.isfinite(ts):
        return "—"
    t = dt.datetime.fromtimestamp(ts, BEIJING)
    text = t.strftime("%Y-%m-%d %H:%M:%S")
    if millis:
        text += f".{t.microsecond // 1000:03d}"
    return f"{text} {ZONE_LABEL}"


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain-text table, columns padded to their widest cell (CJK counted as two columns)."""

    def width(s: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)

    cells = [header, *rows]
    widths = [max(width(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, r in enumerate(cells):
        lines.append(
            "  ".join(c + " " * (w - width(c)) for c, w in zip(r, widths, strict=True)).rstrip()
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
