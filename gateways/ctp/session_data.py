"""What a trading session learns from its queries, as plain data: instruments, the investor's
margin and commission rates, yesterday's open prices, and the drift events of a reconciliation.

The library reuses a struct once its callback returns, so query rows are copied into `Fields`
(a dict read by attribute, which the mapping functions accept like the structs themselves).
"""

from __future__ import annotations

from typing import Any

from rules.model import RiskEvent

DRIFT_RULE = "account.reconcile_drift"
# The initial queries, in the order they are sent (the account last: its answer publishes the
# snapshot, so positions and rates are known by then): name -> (request, field, extra, handler).
QUERIES: dict[str, tuple[str, str, dict[str, str], str]] = {
    "instruments": ("ReqQryInstrument", "CThostFtdcQryInstrumentField", {}, "_on_instruments"),
    "margin_rates": ("ReqQryInstrumentMarginRate", "CThostFtdcQryInstrumentMarginRateField",
                     {"HedgeFlag": "1"}, "_on_margin_rates"),
    "commission_rates": ("ReqQryInstrumentCommissionRate",
                         "CThostFtdcQryInstrumentCommissionRateField", {}, "_on_commission_rates"),
    "position_details": ("ReqQryInvestorPositionDetail",
                         "CThostFtdcQryInvestorPositionDetailField", {}, "_on_details"),
    "positions": ("ReqQryInvestorPosition", "CThostFtdcQryInvestorPositionField", {},
                  "_on_positions"),
    "trading_account": ("ReqQryTradingAccount", "CThostFtdcQryTradingAccountField", {},
                        "_on_account"),
}  # fmt: skip


class Fields(dict):
    """A copied struct read by attribute (mapping functions take structs or these)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def copy_fields(data: Any) -> dict[str, Any] | None:
    """The library reuses the struct after the callback returns: copy its fields out."""
    if data is None:
        return None
    return Fields({k: getattr(data, k) for k in dir(data) if k[:1].isupper()})


def instrument_specs(rows: list[Any]) -> dict[str, dict[str, Any]]:
    """OnRspQryInstrument rows → {instrument: exchange, product, multiplier, tick, margin ratios}."""
    return {
        str(r.InstrumentID): {
            "exchange": str(r.ExchangeID),
            "product": str(r.ProductID),
            "multiplier": float(r.VolumeMultiple),
            "tick_size": float(r.PriceTick),
            "long_margin_ratio": float(r.LongMarginRatio),
            "short_margin_ratio": float(r.ShortMarginRatio),
        }
        for r in rows
    }


def margin_rates(rows: list[Any]) -> dict[str, dict[str, float]]:
    """The investor's margin rates (exchange + broker markup) per instrument."""
    return {
        str(r.InstrumentID): {
            "long_by_money": float(r.LongMarginRatioByMoney),
            "long_by_volume": float(r.LongMarginRatioByVolume),
            "short_by_money": float(r.ShortMarginRatioByMoney),
            "short_by_volume": float(r.ShortMarginRatioByVolume),
        }
        for r in rows
    }


def commission_rates(rows: list[Any]) -> dict[str, dict[str, float]]:
    """The investor's fee table; InstrumentID may be an instrument or a product ("rb")."""
    return {
        str(r.InstrumentID): {
            "open_by_money": float(r.OpenRatioByMoney),
            "open_by_volume": float(r.OpenRatioByVolume),
            "close_by_money": float(r.CloseRatioByMoney),
            "close_by_volume": float(r.CloseRatioByVolume),
            "close_today_by_money": float(r.CloseTodayRatioByMoney),
            "close_today_by_volume": float(r.CloseTodayRatioByVolume),
        }
        for r in rows
    }


def yd_open_prices(rows: list[Any], trading_day: str) -> dict[tuple[str, str], float]:
    """Average open price of yesterday's lots (逐笔 cost) from the position details."""
    sums: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if trading_day and str(r.OpenDate) >= trading_day:
            continue  # opened today: the day's trades bring it
        key = (str(r.InstrumentID), "long" if str(r.Direction) == "0" else "short")
        acc = sums.setdefault(key, [0.0, 0.0])
        acc[0] += float(r.Volume) * float(r.OpenPrice)
        acc[1] += float(r.Volume)
    return {k: s / v for k, (s, v) in sums.items() if v > 0}


def drift_events(
    account_id: str, drifts: list[dict[str, Any]], session: str, trading_day: str, now: float
) -> list[RiskEvent]:
    """One warning per drifted figure or position (see queries.reconcile)."""
    return [
        RiskEvent(
            rule_id=DRIFT_RULE,
            kind=DRIFT_RULE,
            key=account_id,
            severity="warning",
            value=abs(d["drift"]),
            threshold=d["tolerance"],
            ts=now,
            ingress_ts=now,
            attributes={**d, "session": session, "trading_day": trading_day},
        )
        for d in drifts
    ]


def margin_markup(
    rates: dict[str, dict[str, float]], instruments: dict[str, dict[str, Any]]
) -> float | None:
    """The broker's markup over the exchange's margin rate (the account's `margin_markup`):
    the median, over instruments with both, of the investor's rate by money minus the exchange
    ratio CTP reports for the instrument. None when no instrument has both."""
    diffs = sorted(
        max(r["long_by_money"], r["short_by_money"])
        - max(instruments[i]["long_margin_ratio"], instruments[i]["short_margin_ratio"])
        for i, r in rates.items()
        if i in instruments and max(r["long_by_money"], r["short_by_money"]) > 0
    )
    if not diffs:
        return None
    mid = len(diffs) // 2
    return max(0.0, diffs[mid] if len(diffs) % 2 else (diffs[mid - 1] + diffs[mid]) / 2)
