"""Charts for HTML reports with Apache ECharts, shipped in the package (no CDN).

A report page names its charts as ECharts option dicts; the page loads `echarts.min.js` from the
report's own folder (copied there by `write_assets`), so a report opens offline and on an
isolated network exactly as in the console.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

ASSET = Path(__file__).resolve().parent.parent / "static" / "echarts.min.js"


def write_assets(out_dir: str | Path) -> Path:
    """Copy echarts.min.js into the report folder (once); returns its path."""
    target = Path(out_dir) / ASSET.name
    if not target.exists() or target.stat().st_size != ASSET.stat().st_size:
        shutil.copyfile(ASSET, target)
    return target


def bar_chart(title: str, labels: list[str], values: list[float], unit: str = "") -> dict[str, Any]:
    return {
        "title": {"text": title, "left": "center"},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"rotate": 45}},
        "yAxis": {"type": "value", "name": unit},
        "series": [{"type": "bar", "data": [round(v, 2) for v in values]}],
        "grid": {"bottom": 80},
    }


def histogram(title: str, edges: list[float], counts: list[int], unit: str = "") -> dict[str, Any]:
    labels = [f"{a:g}–{b:g}{unit}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    chart = bar_chart(title, labels, [float(c) for c in counts], "accounts")
    chart["series"][0]["barCategoryGap"] = "5%"
    return chart


def page(title: str, body: str, charts: dict[str, dict[str, Any]]) -> str:
    """A self-contained page: `body` holds `<div id=KEY class=chart>` for each chart KEY."""
    script = "\n".join(
        f"echarts.init(document.getElementById({json.dumps(key)})).setOption({json.dumps(opt)});"
        for key, opt in charts.items()
    )
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em;}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} th{{background:#f3f3f3}}
td:first-child,th:first-child{{text-align:left}} .chart{{width:100%;max-width:900px;height:360px}}
.bad{{color:#b00;font-weight:bold}}</style>
<script src="{ASSET.name}"></script></head><body>
<h1>{html.escape(title)}</h1>
{body}
<script>{script}</script>
</body></html>
"""
