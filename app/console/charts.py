"""Chart data of the account page: its risk degree and the price of its main contracts.

From the journal (risk events, the Executor's account marks, fills, proposal closings — each
carries the account's figures or a price at a moment) and the shard's live view (the figures
and last prices now), as [epoch ms, value] pairs that ECharts draws on a time axis: the risk
degree on the left axis, the prices on the right one. The main contracts are the account's
positions with the most margin (at most MAIN_CONTRACTS).
"""

from __future__ import annotations

import math
import time
from typing import Any

MAIN_CONTRACTS = 3


def main_contracts(view: dict[str, Any]) -> list[str]:
    """The account's contracts by margin, largest first (one entry per contract)."""
    margin: dict[str, float] = {}
    for p in view.get("positions", []):
        margin[p["instrument"]] = margin.get(p["instrument"], 0.0) + abs(float(p.get("margin", 0)))
    return sorted(margin, key=lambda i: -margin[i])[:MAIN_CONTRACTS]


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def account_chart(
    view: dict[str, Any], events: list[dict[str, Any]], now: float | None = None
) -> dict[str, Any]:
    """{"risk_degree": [[ms, v]...], "prices": {instrument: [[ms, price]...]}, "main": [...]}."""
    main = main_contracts(view)
    risk: list[list[float]] = []
    prices: dict[str, list[list[float]]] = {i: [] for i in main}

    def price(ts: float, instrument: str, value: Any) -> None:
        x = _num(value)
        if instrument in prices and x is not None:
            prices[instrument].append([ts * 1000, x])

    for r in events:
        ts, kind = float(r.get("ts") or 0.0), r.get("kind")
        attrs = r.get("attributes") if isinstance(r.get("attributes"), dict) else {}
        degree = _num(r.get("risk_degree", attrs.get("risk_degree")))
        if kind == "proposal_closed":
            degree = _num(r.get("risk_degree_after"))
            for instrument, value in (r.get("prices_after") or {}).items():
                price(ts, instrument, value)
        elif kind == "account_mark":
            for instrument, value in (r.get("prices") or {}).items():
                price(ts, instrument, value)
        elif kind == "trade":
            price(ts, str(r.get("instrument", "")), r.get("price"))
        if degree is not None and kind in ("risk_event", "account_mark", "proposal_closed"):
            risk.append([ts * 1000, degree])
    at = (now if now is not None else time.time()) * 1000
    if _num(view.get("risk_degree")) is not None:
        risk.append([at, float(view["risk_degree"])])
    for p in view.get("positions", []):
        if p["instrument"] in prices and _num(p.get("last")) is not None:
            if not prices[p["instrument"]] or prices[p["instrument"]][-1][0] != at:
                prices[p["instrument"]].append([at, float(p["last"])])
    risk.sort()
    for series in prices.values():
        series.sort()
    return {"risk_degree": risk, "prices": prices, "main": main}
