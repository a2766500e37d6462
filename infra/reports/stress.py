"""The stress report: a table for the terminal, JSON for machines, HTML with charts for people.

Figures are formatted as a risk manager reads them (rules.display); the JSON keeps raw numbers
(ratios, yuan) with +inf written as the string "inf" (JSON has no infinity).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from infra.reports.charts import bar_chart, histogram, page, write_assets
from rules.display import beijing, percent, table, yuan
from rules.stress import StressResult

TOP_COLUMNS = ["account", "group", "risk before", "risk after", "equity after", "loss",
               "margin call", "flags"]  # fmt: skip


def _flags(row: dict[str, Any]) -> str:
    out = []
    if row["bust"]:
        out.append("穿仓")
    elif row["past_line"]:
        out.append("past line")
    if row["locked"]:
        out.append("locked")
    return ",".join(out)


def text_report(result: StressResult, top: int = 20, at: float | None = None) -> str:
    s = result.summary()
    head = [
        f"stress {s['scenario']}: {s['description']}",
        f"  as of {beijing(at)}" if at else "",
        f"  accounts {s['accounts']:,}  past the line {s['past_line']:,}  穿仓 {s['bust']:,}  "
        f"locked {s['locked']:,}",
        f"  loss {yuan(s['loss'])}  shortfall to the line {yuan(s['shortfall_to_line'])}  "
        f"margin call to {percent(s['target'], 0)} {yuan(s['margin_call'])}",
        f"  contracts moved {s['contracts_moved']}, capped at the limit {s['contracts_capped']}",
        f"  NOT MOVED, no price yet (held, covered by the scenario): {', '.join(s['unpriced'])}"
        if s["unpriced"]
        else "",
    ]
    rows = [[r["account_id"], r["group_path"], percent(r["risk_degree_before"]),
             percent(r["risk_degree_after"]), yuan(r["equity_after"]), yuan(r["loss"]),
             yuan(r["margin_call"]), _flags(r)] for r in result.top(top)]  # fmt: skip
    commodity = [[k, yuan(v)] for k, v in sorted(result.loss_by_commodity.items(),
                                                 key=lambda kv: -kv[1])]  # fmt: skip
    parts = ["\n".join(h for h in head if h), "", table(rows, TOP_COLUMNS)]
    if commodity:
        parts += ["", table(commodity, ["commodity", "loss"])]
    return "\n".join(parts)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def json_report(result: StressResult, top: int = 20) -> dict[str, Any]:
    return _plain({
        "summary": result.summary(),
        "top": result.top(top),
        "rollup": result.rollup(),
        "loss_by_commodity": result.loss_by_commodity,
        "accounts": [result.row(i) for i in range(len(result.account_ids))],
    })  # fmt: skip


def html_report(result: StressResult, top: int = 20, at: float | None = None) -> str:
    s = result.summary()
    losses = sorted(result.loss_by_commodity.items(), key=lambda kv: -kv[1])
    rd = np.clip(np.nan_to_num(result.risk_degree_after, posinf=10.0), 0, 10.0) * 100
    edges = [0, 20, 40, 60, 80, 100, 150, 200, 1000]
    counts = np.histogram(rd, bins=edges)[0].tolist()
    charts = {
        "loss": bar_chart("loss by commodity", [k for k, _ in losses], [v for _, v in losses], "¥"),
        "rd": histogram("risk degree after the scenario", edges, counts, "%"),
    }
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
            r["account_id"], r["group_path"], percent(r["risk_degree_before"]),
            percent(r["risk_degree_after"]), yuan(r["equity_after"]), yuan(r["loss"]),
            yuan(r["margin_call"]), _flags(r))) + "</tr>"
        for r in result.top(top)
    )  # fmt: skip
    nodes = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{int(v['accounts']):,}</td><td>{int(v['past_line']):,}</td>"
        f"<td>{yuan(v['loss'])}</td><td>{yuan(v['margin_call'])}</td></tr>"
        for n, v in sorted(result.rollup().items())
    )
    body = f"""<p>{html.escape(s["description"])}{" — " + beijing(at) if at else ""}</p>
<p>accounts {s["accounts"]:,} · past the line <b class="bad">{s["past_line"]:,}</b> · 穿仓
{s["bust"]:,} · locked {s["locked"]:,} · loss {yuan(s["loss"])} · margin call to
{percent(s["target"], 0)} <b>{yuan(s["margin_call"])}</b></p>
<div id="loss" class="chart"></div><div id="rd" class="chart"></div>
<h2>accounts hit hardest</h2><table><tr>{"".join(f"<th>{c}</th>" for c in TOP_COLUMNS)}</tr>{rows}</table>
<h2>by hierarchy node</h2><table><tr><th>node</th><th>accounts</th><th>past line</th><th>loss</th>
<th>margin call</th></tr>{nodes}</table>"""
    return page(f"stress {s['scenario']}", body, charts)


def write_reports(result: StressResult, out_dir: str | Path, top: int = 20,
                  at: float | None = None) -> tuple[Path, Path]:  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_assets(out)
    stem = f"stress-{result.scenario.name}"
    j = out / f"{stem}.json"
    j.write_text(
        json.dumps(json_report(result, top), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    h = out / f"{stem}.html"
    h.write_text(html_report(result, top, at), encoding="utf-8")
    return j, h
