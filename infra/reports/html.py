"""Reports as one self-contained HTML file (inline CSS and SVG) and the same data as JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from infra.reports.svg import line_chart
from rules.display import beijing

CSS = """body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;
font-size:12px}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f4f6f7}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.ok{color:#1e8449}.bad{color:#c0392b}.mono{font-family:monospace}"""


def _ts(ts: float | None) -> str:
    if not ts:
        return "-"
    return beijing(ts, millis=True)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_cell(x)}" for k, x in v.items())
    return "" if v is None else str(v)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>{body}"
        f"<p><small>generated {_ts(time.time())} from the audit journal</small></p></body></html>"
    )


def _charts(report: dict[str, Any], markers: list[tuple[float, str]]) -> str:
    series = report.get("series", {})
    hl = []
    if report.get("threshold") is not None:
        hl.append((float(report["threshold"]), f"threshold {report['threshold']:.0%}"))
    if report.get("target") is not None:
        hl.append((float(report["target"]), f"target {report['target']:.0%}"))
    out = line_chart(
        {"risk degree": series.get("risk_degree", [])},
        title="风险度 risk degree",
        y_format="{:.1%}",
        hlines=hl,
        markers=markers,
    )
    for inst, pts in sorted(series.get("prices", {}).items()):
        out += "<br>" + line_chart({inst: pts}, title=f"{inst} price", height=180, markers=markers)
    return out


def replay_html(report: dict[str, Any]) -> str:
    steps = report.get("timeline", [])
    markers = [
        (s["ts"], s["step"])
        for s in steps
        if s["step"] in ("alert", "decision", "fill", "closed", "acknowledged")
    ][:12]
    for s in steps:
        s["time"] = _ts(s["ts"])
    if report["kind"] == "replay.alert":
        title = f"复盘 replay — alert {report['alert_id']} ({report['account_id']})"
        after = report.get("figures_after") or {}
        summary = (
            f"<p>{escape(report.get('title', ''))}<br>rule {escape(str(report.get('rule_id')))}, "
            f"severity {escape(str(report.get('severity')))}; outcome "
            f"<b>{escape(str(after.get('state', 'open')))}</b> {escape(str(after.get('reason') or ''))}</p>"
        )
        if after:
            summary += "<h2>Figures after</h2>" + _table(
                [after], ["risk_degree", "equity", "margin", "positions"]
            )
    else:
        title = f"复盘 replay — account {report['account_id']}"
        summary = f"<p>{_ts(report['since'])} → {_ts(report['until'])}; alerts: {len(report.get('alerts', []))}</p>"
    body = summary + "<h2>Charts</h2>" + _charts(report, markers)
    body += "<h2>Timeline</h2>" + _table(steps, ["time", "t_plus_s", "step", "detail", "seq"])
    return _page(title, body)


def kpi_html(kpis: dict[str, Any]) -> str:
    rate = kpis.get("closed_loop_rate")
    cls = "ok" if rate == 1.0 else "bad"
    body = (
        f"<p>{_ts(kpis['since'])} → {_ts(kpis['until'])}</p>"
        f'<p>closed-loop rate <b class="{cls}">{"-" if rate is None else f"{rate:.2%}"}</b> '
        f"({kpis['closed']} of {kpis['needed_action']} events that needed action); "
        f"alerts {kpis['alerts']}; delivered within 60 s: {kpis.get('delivered_within_60s')}</p>"
    )
    rows = [
        {"measure": name, **kpis[key]}
        for name, key in (
            ("data → first delivery", "time_to_first_delivery_s"),
            ("data → acknowledgement", "time_to_ack_s"),
            ("data → decision", "time_to_decision_s"),
            ("data → execution", "time_to_execution_s"),
        )
    ]
    body += "<h2>Times (s)</h2>" + _table(rows, ["measure", "n", "p50", "p95", "max"])
    body += "<h2>Proposals</h2>" + _table([kpis["proposal_states"]], list(kpis["proposal_states"]))
    return _page("闭环 KPIs — closed loop", body)


def day_html(report: dict[str, Any]) -> str:
    ok = report["chain_ok"]
    body = (
        f"<p>{report['records']:,} records, seq {report['seq_range']}; chain "
        f'<b class="{"ok" if ok else "bad"}">{"intact" if ok else "BROKEN"}</b></p>'
    )
    if report["breaks"]:
        body += _table(report["breaks"], ["seq", "reason"])
    body += "<h2>Records by kind</h2>" + _table(
        [{"kind": k, "records": v} for k, v in report["counts_by_kind"].items()],
        ["kind", "records"],
    )
    body += kpi_html(report["kpis"]).split("<body>", 1)[1].split("<p><small>", 1)[0]
    rows = [{**a, "time": _ts(a["ts"])} for a in report["alerts"][:5000]]
    body += f"<h2>Alerts ({len(report['alerts'])})</h2>" + _table(
        rows, ["time", "alert_id", "account", "rule_id", "severity", "value", "outcome"]
    )
    return _page(f"审计日报 audit report — {report['day']}", body)


RENDER = {"replay.alert": replay_html, "replay.account": replay_html, "report.day": day_html}


def write_report(report: dict[str, Any], out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """Write <stem>.html and <stem>.json; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    render = RENDER.get(report.get("kind", ""), kpi_html)
    html_path, json_path = out / f"{stem}.html", out / f"{stem}.json"
    html_path.write_text(render(report), encoding="utf-8")
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str) + "\n")
    return html_path, json_path
