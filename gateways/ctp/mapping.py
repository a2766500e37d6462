"""CTP structs ↔ fengkong records: pure functions over the structs' attributes.

Nothing here talks to a front; the SPIs in `md.py` and `trader.py` call these on every callback,
so the tests drive them with the real library's structs.

Market data (`CThostFtdcDepthMarketDataField` → `gateways.market.replay.Row`, then the feed's
columnar tick frame):
- Empty price fields carry DBL_MAX (1.797e308) — "no value", never a price. Every price field
  at or beyond 1e300, or not finite, becomes NaN. Bid/ask/limits of exactly 0 are "none" too
  (some fronts write 0 where others write DBL_MAX); any other finite number is a price,
  negative included (crude oil settled at −37.63 on 2020-04-20).
- Time: UpdateTime "HH:MM:SS" + UpdateMillisec, Beijing time. TradingDay is the day a night
  tick belongs to (night trading belongs to the next trading day); the calendar day comes from
  ActionDay, except where an exchange is known to fill it wrongly:
    DCE (and GFEX, same front software): on night sessions ActionDay = TradingDay (the next
      day), so the calendar day is derived: ≥ 18:00 the weekday before TradingDay (Friday night
      for a Monday), < 06:00 the day after that.
    CZCE: on night sessions TradingDay = the calendar day (ActionDay); the trading day is then
      the next weekday after the night's evening.
    SHFE, INE, CFFEX: both as documented.
  An unknown exchange (many fronts leave ExchangeID empty in market data; the contract table
  names it) falls back on the time-of-day rule: a night tick whose two days agree is fixed the
  DCE way. Holidays are not known here: a night before a holiday maps to the next weekday.
- A snapshot without an InstrumentID, with a bad UpdateTime or without a last price raises
  `BadSnapshot` with the reason; the gateway counts and quarantines it.

Trading (`CThostFtdcTradeField`, `CThostFtdcOrderField`, `CThostFtdcTradingAccountField`,
`CThostFtdcInvestorPositionField`) → the account bus records of `gateways.accounts.bus`.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from typing import Any

from gateways.market.replay import BEIJING, Row, previous_weekday

EMPTY_AT = 1e300  # DBL_MAX and its neighbours: CTP's "no value"
NIGHT_FROM_S = 18 * 3600
MORNING_UNTIL_S = 6 * 3600
ACTION_DAY_WRONG_AT_NIGHT = frozenset({"DCE", "GFEX"})
TRADING_DAY_WRONG_AT_NIGHT = frozenset({"CZCE"})
CLOSE_TODAY_EXCHANGES = frozenset({"SHFE", "INE"})  # close-today is a flag of its own there
_PRODUCT = re.compile(r"^[A-Za-z]+")

# CTP char codes (ThostFtdcUserApiDataType.h); the same in every API version.
DIRECTION = {"0": "long", "1": "short"}  # THOST_FTDC_D_Buy / _Sell (of the order)
POSI_DIRECTION = {"2": "long", "3": "short"}  # THOST_FTDC_PD_Long / _Short ("1" net: not futures)
OFFSET = {
    "0": "open",  # Open
    "1": "close",  # Close
    "2": "close",  # ForceClose (强平)
    "3": "close_today",  # CloseToday
    "4": "close",  # CloseYesterday
    "5": "close",  # ForceOff
    "6": "close",  # LocalForceClose
}
ORDER_STATUS = {
    "0": "filled",  # AllTraded
    "1": "partially_filled",  # PartTradedQueueing
    "2": "partially_filled",  # PartTradedNotQueueing (the rest is cancelled next)
    "3": "accepted",  # NoTradeQueueing
    "4": "accepted",  # NoTradeNotQueueing
    "5": "cancelled",  # Canceled
    "a": "accepted",  # Unknown: sent, not yet acknowledged by the exchange
    "b": "accepted",  # NotTouched (conditional)
    "c": "accepted",  # Touched
}


class BadSnapshot(ValueError):
    """A market snapshot that cannot become a tick; the message is the reason."""


def price(value: float) -> float:
    """A CTP price field: NaN for the DBL_MAX sentinel and anything not finite."""
    v = float(value)
    return v if math.isfinite(v) and abs(v) < EMPTY_AT else math.nan


def quote(value: float) -> float:
    """Bid/ask/limit: like `price`, and 0 is "none" too."""
    v = price(value)
    return math.nan if v == 0.0 else v


def product_of(instrument: str) -> str:
    m = _PRODUCT.match(instrument)
    return m.group(0) if m else instrument


def _day(text: str, what: str) -> date:
    try:
        return datetime.strptime(text.strip(), "%Y%m%d").date()
    except ValueError:
        raise BadSnapshot(f"{what} {text!r} is not YYYYMMDD") from None


def _seconds(update_time: str, millisec: int) -> float:
    try:
        hh, mm, ss = update_time.strip().split(":")
        h, m, s = int(hh), int(mm), int(ss)
    except ValueError:
        raise BadSnapshot(f"UpdateTime {update_time!r} is not HH:MM:SS") from None
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61 and 0 <= millisec < 1000):
        raise BadSnapshot(f"UpdateTime {update_time!r}.{millisec} out of range")
    return h * 3600 + m * 60 + s + millisec / 1000


def next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def tick_days(
    trading_day: str, action_day: str, seconds: float, exchange: str
) -> tuple[date, date]:
    """(calendar day, trading day) of a snapshot, corrected per exchange (module docstring)."""
    night = seconds >= NIGHT_FROM_S
    morning = seconds < MORNING_UNTIL_S
    tday = _day(trading_day, "TradingDay") if trading_day.strip() else None
    aday = _day(action_day, "ActionDay") if action_day.strip() else None
    if tday is None and aday is None:
        raise BadSnapshot("no TradingDay and no ActionDay")
    if not (night or morning):
        return (aday or tday), (tday or aday)  # type: ignore[return-value]
    if exchange in TRADING_DAY_WRONG_AT_NIGHT and aday is not None:
        evening = aday if night else aday - timedelta(days=1)
        return aday, next_weekday(evening)
    wrong_action = exchange in ACTION_DAY_WRONG_AT_NIGHT or (
        exchange not in TRADING_DAY_WRONG_AT_NIGHT and aday == tday
    )
    if tday is not None and (aday is None or wrong_action):
        evening = previous_weekday(tday)
        return (evening if night else evening + timedelta(days=1)), tday
    return aday, (tday or next_weekday(aday))  # type: ignore[arg-type,return-value]


def epoch(day: date, seconds: float) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp() + seconds


def tick_row(f: Any, exchange: str = "") -> tuple[Row, date]:
    """One depth snapshot as a replay Row (the feed's tick), and its trading day."""
    instrument = str(f.InstrumentID).strip()
    if not instrument:
        raise BadSnapshot("no InstrumentID")
    exchange = (str(f.ExchangeID).strip() or exchange or "").upper()
    seconds = _seconds(str(f.UpdateTime), int(f.UpdateMillisec))
    cal, tday = tick_days(str(f.TradingDay), str(f.ActionDay), seconds, exchange)
    last = price(f.LastPrice)
    if math.isnan(last):
        raise BadSnapshot(f"{instrument}: LastPrice empty (DBL_MAX or not finite)")
    volume, oi = float(f.Volume), price(f.OpenInterest)
    if volume < 0:
        raise BadSnapshot(f"{instrument}: Volume {volume:g} negative")
    row = Row(
        epoch(cal, seconds), instrument, last, volume, oi, quote(f.BidPrice1),
        quote(f.AskPrice1), quote(f.UpperLimitPrice), quote(f.LowerLimitPrice),
        price(f.PreSettlementPrice),
    )  # fmt: skip
    return row, tday


# -- trading -------------------------------------------------------------------------------
def _ctp_ts(day: str, hhmmss: str) -> float:
    try:
        d = datetime.strptime(day.strip(), "%Y%m%d").date()
        h, m, s = (int(x) for x in hhmmss.strip().split(":"))
    except ValueError:
        return 0.0
    return epoch(d, h * 3600 + m * 60 + s)


def trade_record(f: Any, order_ref: str, commission: float) -> dict[str, Any]:
    """OnRtnTrade → a bus `trade` record (direction of the order, offset mapped, see OFFSET)."""
    direction, offset = DIRECTION.get(str(f.Direction)), OFFSET.get(str(f.OffsetFlag))
    if direction is None or offset is None:
        raise ValueError(
            f"trade {f.TradeID}: Direction {f.Direction!r} / OffsetFlag {f.OffsetFlag!r} unknown"
        )
    return {
        "type": "trade",
        "account_id": str(f.InvestorID),
        "instrument": str(f.InstrumentID),
        "exchange": str(f.ExchangeID),
        "direction": direction,
        "offset": offset,
        "ctp_offset_flag": str(f.OffsetFlag),
        "volume": float(f.Volume),
        "price": float(f.Price),
        "commission": float(commission),
        "trade_id": f"{f.ExchangeID}:{str(f.TradeID).strip()}",
        "order_ref": order_ref,
        "ts": _ctp_ts(str(f.TradeDate), str(f.TradeTime)),
    }


def order_key(f: Any) -> tuple[int, int, str]:
    """What identifies an order of a session in CTP: (FrontID, SessionID, OrderRef)."""
    return int(f.FrontID), int(f.SessionID), str(f.OrderRef).strip()


def order_record(f: Any, order_ref: str, kind: str) -> dict[str, Any]:
    """OnRtnOrder → a bus `order` (first sight) or `cancel` record for behaviour rules."""
    rec: dict[str, Any] = {
        "type": kind,
        "account_id": str(f.InvestorID),
        "order_ref": order_ref,
        "instrument": str(f.InstrumentID),
        "ts": _ctp_ts(str(f.InsertDate), str(f.CancelTime if kind == "cancel" else f.InsertTime)),
    }
    if kind == "order":
        rec["direction"] = DIRECTION.get(str(f.Direction), "long")
        rec["offset"] = OFFSET.get(str(f.CombOffsetFlag)[:1], "open")
        rec["volume"] = float(f.VolumeTotalOriginal)
        rec["price"] = float(f.LimitPrice)
    return rec


ACCOUNT_FIELDS = {
    "pre_balance": "PreBalance",
    "deposit": "Deposit",
    "withdraw": "Withdraw",
    "close_profit": "CloseProfit",
    "position_profit": "PositionProfit",
    "commission": "Commission",
    "margin": "CurrMargin",
    "frozen_margin": "FrozenMargin",
    "frozen_commission": "FrozenCommission",
    "equity": "Balance",
    "available": "Available",
}


def account_figures(f: Any) -> dict[str, float]:
    """CThostFtdcTradingAccountField → fengkong's names (Balance is 动态权益, CurrMargin 占用保证金)."""
    return {name: float(getattr(f, attr)) for name, attr in ACCOUNT_FIELDS.items()}


def position_row(f: Any) -> dict[str, Any]:
    return {
        "instrument": str(f.InstrumentID),
        "exchange": str(f.ExchangeID),
        "direction": POSI_DIRECTION.get(str(f.PosiDirection), "net"),
        "position": float(f.Position),
        "today_position": float(f.TodayPosition),
        "yd_position": float(f.YdPosition),
        "pre_settlement": price(f.PreSettlementPrice),
        "margin": float(f.UseMargin),
    }


def snapshot_record(
    account_id: str,
    group_path: str,
    figures: dict[str, float],
    positions: list[dict[str, Any]],
    yd_open_price: dict[tuple[str, str], float],
) -> dict[str, Any]:
    """The start-of-day picture a session publishes before streaming today's trades.

    The private topic is subscribed with RESTART, so every trade of the day arrives through
    OnRtnTrade; the snapshot therefore holds yesterday's lots only (YdPosition, summed over
    the today/history rows SHFE and INE report apart) and no close profit or commission of
    today — the trades bring them, and reconciliation checks the sum against CTP's own figures.
    """
    lots: dict[tuple[str, str], list[float]] = {}
    for p in positions:
        if p["direction"] not in ("long", "short"):
            continue
        key = (p["instrument"], p["direction"])
        acc = lots.setdefault(key, [0.0, p["pre_settlement"]])
        acc[0] += p["yd_position"]
        if math.isnan(acc[1]):
            acc[1] = p["pre_settlement"]
    out = []
    for (instrument, direction), (volume, pre_settlement) in sorted(lots.items()):
        if volume <= 0:
            continue
        cost = pre_settlement if math.isfinite(pre_settlement) else 0.0
        out.append({
            "instrument": instrument, "direction": direction, "volume": volume,
            "today_volume": 0.0, "cost_price": cost,
            "open_price": yd_open_price.get((instrument, direction), cost),
        })  # fmt: skip
    return {
        "type": "snapshot",
        "account_id": account_id,
        "group_path": group_path,
        "pre_balance": figures["pre_balance"],
        "deposit": figures["deposit"],
        "withdraw": figures["withdraw"],
        "close_profit": 0.0,
        "commission": 0.0,
        "frozen_margin": figures["frozen_margin"],
        "frozen_commission": figures["frozen_commission"],
        "positions": out,
    }


def commission_of(rates: dict[str, float] | None, offset: str, price_: float, volume: float,
                  multiplier: float) -> float:  # fmt: skip
    """Fee of one fill from the investor's commission rates (by money and by volume)."""
    if not rates:
        return 0.0
    key = {"open": "open", "close": "close", "close_today": "close_today"}[offset]
    return (
        rates.get(f"{key}_by_money", 0.0) * price_ * volume * multiplier
        + rates.get(f"{key}_by_volume", 0.0) * volume
    )


def offset_flag(offset: str, exchange: str) -> str:
    """The CombOffsetFlag for an executor offset: SHFE/INE know close-today ("3") and close
    (= close yesterday, "1"); the other exchanges close today's or yesterday's lots by their own
    rule and take "1" for both."""
    if offset == "open":
        return "0"
    if offset == "close_today" and exchange in CLOSE_TODAY_EXCHANGES:
        return "3"
    if offset in ("close", "close_today"):
        return "1"
    raise ValueError(f"offset {offset!r} not one of open/close/close_today")
