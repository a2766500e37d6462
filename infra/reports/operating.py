"""`fengkong report operating --date D`: the daily operating-risk report, HTML and JSON.

Built from the `operating_snapshot` records the exposure books journal during trading day D
(`books.snapshot_s`), so it needs the journal file only, not a running system. Per commodity:
the last figures of the day (exposure by component and business unit, basis and its change,
hedge ratio, VaR) and a chart of exposure and basis through the day; in total: money exposure
per business unit and VaR over all books, their scenario P&L summed day by day so hedges
between commodities net out (rules.var.aligned_total).

The HTML is one self-contained file (inline CSS and SVG, no script, no CDN): it opens from a
mail attachment on a desk without internet access. The JSON holds the same figures.
"""

from __future__ import annotations

import argparse
import html
import json
import math
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from infra.audit import AuditStore
from rules.sessions import parse_day
from rules.var import aligned_total, var_figures

VAR_LABELS = {
    "var_95": "VaR 95% 1-day, historical", "var_99": "VaR 99% 1-day, historical",
    "param_var_95": "VaR 95% 1-day, parametric", "param_var_99": "VaR 99% 1-day, parametric",
}  # fmt: skip
COMPONENTS = (
    ("futures_units", "futures"), ("inventory_units", "inventory"),
    ("purchase_units", "purchase contracts"), ("sale_units", "sales contracts"),
    ("net_units", "net exposure"),
)  # fmt: skip


def num(value: Any) -> float:
    """Journal values are JSON: NaN was written as the string "nan"."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def load_snapshots(store: AuditStore, day: date) -> list[dict[str, Any]]:
    return store.query(kind="operating_snapshot", ref=day.isoformat())


def build(snapshots: list[dict[str, Any]], day: date) -> dict[str, Any]:
    by_commodity: dict[str, list[dict[str, Any]]] = {}
    for snap in sorted(snapshots, key=lambda s: s["ts"]):
        by_commodity.setdefault(snap["commodity"], []).append(snap)
    books = []
    unit_money: dict[str, float] = {}
    scenarios = []
    for commodity, snaps in sorted(by_commodity.items()):
        last = snaps[-1]
        figures = {k: v for k, v in last.items() if k not in ("seq", "actor", "key", "ref", "kind")}
        pnl = figures.pop("var_pnl", {}) or {}
        if pnl:
            scenarios.append({parse_day(d): num(v) for d, v in pnl.items()})
        for unit, row in (figures.get("by_unit") or {}).items():
            value = num(row.get("net_value"))
            if math.isfinite(value):
                unit_money[unit] = unit_money.get(unit, 0.0) + value
        series = [
            {"ts": s["ts"], "net_units": num(s.get("net_units")), "basis": num(s.get("basis")),
             "net_value": num(s.get("net_value"))}
            for s in snaps
        ]  # fmt: skip
        books.append({"commodity": commodity, "figures": figures, "series": series})
    values = [num(b["figures"].get("net_value")) for b in books]
    finite = [v for v in values if math.isfinite(v)]
    total_pnl = aligned_total(scenarios)
    total = {
        "net_value": sum(finite),
        "gross_value": sum(abs(v) for v in finite),
        "books": len(books),
        "books_without_price": len(values) - len(finite),
        "by_unit": dict(sorted(unit_money.items())),
        "var_days": len(total_pnl),
        **var_figures(total_pnl),
    }
    return {"report": "operating", "trading_day": day.isoformat(), "books": books, "total": total}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _fmt(value: Any, digits: int = 2) -> str:
    v = num(value)
    if not math.isfinite(v):
        return "—"
    return f"{v:,.{digits}f}"


def chart(series: list[dict[str, Any]], width: int = 640, height: int = 220) -> str:
    """Inline SVG: net exposure (units, left axis) and basis (right axis) through the day."""
    pad_l, pad_r, pad_t, pad_b = 70, 70, 20, 30
    ts = [p["ts"] for p in series]
    t0, t1 = (min(ts), max(ts)) if ts else (0.0, 1.0)
    t1 = t1 if t1 > t0 else t0 + 1

    def scale(key: str) -> tuple[float, float] | None:
        vals = [p[key] for p in series if math.isfinite(p[key])]
        if not vals:
            return None
        lo, hi = min(vals), max(vals)
        return (lo - 1, hi + 1) if lo == hi else (lo, hi)

    def path(key: str, rng: tuple[float, float] | None) -> str:
        if rng is None:
            return ""
        pts = []
        for p in series:
            if math.isfinite(p[key]):
                x = pad_l + (p["ts"] - t0) / (t1 - t0) * (width - pad_l - pad_r)
                y = pad_t + (1 - (p[key] - rng[0]) / (rng[1] - rng[0])) * (height - pad_t - pad_b)
                pts.append(f"{x:.1f},{y:.1f}")
        return " ".join(pts)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="exposure and basis">',
        f'<rect x="{pad_l}" y="{pad_t}" width="{width - pad_l - pad_r}" '
        f'height="{height - pad_t - pad_b}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for key, color, anchor, x in (("net_units", "#1f5fbf", "end", pad_l - 6),
                                  ("basis", "#c0392b", "start", width - pad_r + 6)):  # fmt: skip
        rng = scale(key)
        pts = path(key, rng)
        if rng is not None:
            for value, y in ((rng[1], pad_t + 10), (rng[0], height - pad_b)):
                parts.append(
                    f'<text x="{x}" y="{y}" font-size="11" fill="{color}" '
                    f'text-anchor="{anchor}">{_fmt(value)}</text>'
                )
        if pts.count(" ") >= 1:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>'
            )
        elif pts:
            cx, cy = pts.split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
    legend_y = height - 8
    parts.append(
        f'<text x="{pad_l}" y="{legend_y}" font-size="11" fill="#1f5fbf">— net exposure (units)'
        f'</text><text x="{pad_l + 170}" y="{legend_y}" font-size="11" fill="#c0392b">'
        "— basis (spot − futures)</text></svg>"
    )
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    esc = html.escape
    day = report["trading_day"]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Operating risk {esc(day)}</title><style>",
        "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;"
        "margin:8px 0 16px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}",
        "</style></head><body>",
        f"<h1>Operating risk report — trading day {esc(day)}</h1>",
    ]
    total = report["total"]
    out.append("<h2>Total</h2><table><tr><th>figure</th><th>value</th></tr>")
    for key, label in (("net_value", "net exposure (money)"), ("gross_value", "gross exposure"),
                       *VAR_LABELS.items(),
                       ("var_days", "VaR scenario days")):  # fmt: skip
        out.append(f"<tr><td>{esc(label)}</td><td>{_fmt(total.get(key))}</td></tr>")
    out.append("</table><table><tr><th>business unit</th><th>net exposure (money)</th></tr>")
    for unit, value in total["by_unit"].items():
        out.append(f"<tr><td>{esc(unit)}</td><td>{_fmt(value)}</td></tr>")
    out.append("</table>")
    for book in report["books"]:
        f = book["figures"]
        out.append(
            f"<h2>{esc(book['commodity'])}</h2><table><tr><th>figure</th><th>value</th></tr>"
        )
        rows: list[tuple[str, Any]] = [(label, f.get(key)) for key, label in COMPONENTS]
        rows += [
            ("net exposure (money)", f.get("net_value")), ("mark price", f.get("mark_price")),
            ("spot price", f.get("spot_price")), (f"futures ({f.get('main_contract')})",
                                                  f.get("futures_price")),
            ("basis", f.get("basis")), ("basis change", f.get("basis_change")),
            ("hedge ratio", f.get("hedge_ratio")),
            *((label, f.get(k)) for k, label in VAR_LABELS.items()),
        ]  # fmt: skip
        for label, value in rows:
            out.append(f"<tr><td>{esc(label)}</td><td>{_fmt(value)}</td></tr>")
        out.append(f"<tr><td>VaR method</td><td>{esc(str(f.get('var_method')))}</td></tr></table>")
        out.append(
            "<table><tr><th>business unit</th><th>inventory</th><th>purchases</th>"
            "<th>sales</th><th>futures</th><th>net units</th><th>net money</th></tr>"
        )
        for unit, row in (f.get("by_unit") or {}).items():
            cells = "".join(
                f"<td>{_fmt(row.get(k))}</td>"
                for k in ("inventory", "purchases", "sales", "futures", "net_units", "net_value")
            )
            out.append(f"<tr><td>{esc(unit)}</td>{cells}</tr>")
        out.append("</table>" + chart(book["series"]))
    if not report["books"]:
        out.append("<p>No operating snapshots were journaled for this trading day.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"operating_{report['trading_day']}"
    html_path, json_path = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    html_path.write_text(render_html(report), encoding="utf-8")
    json_path.write_text(
        json.dumps(_clean(report), ensure_ascii=False, indent=2, allow_nan=False),
        encoding="utf-8",
    )
    return html_path, json_path


def cmd_report(args: argparse.Namespace, load_config: Callable[[argparse.Namespace], Any]) -> int:
    day = parse_day(args.date)
    journal = args.journal or load_config(args).audit.path
    if not Path(journal).exists():
        print(f"journal {journal} not found")
        return 1
    report = build(load_snapshots(AuditStore(journal), day), day)
    html_path, json_path = write(report, Path(args.out))
    print(f"{len(report['books'])} books; wrote {html_path} and {json_path}")
    return 0
