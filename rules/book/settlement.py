"""The trading day as an explicit event: settlement rolls every account of the book.

A settlement record is ``{"type": "settlement", "trading_day": "YYYYMMDD" (the day settled),
"next_trading_day": "YYYYMMDD", "prices": {instrument: settlement price, ...}, "ts": float}``.

Every contract an active account holds must have a settlement price: one missing raises BookError naming it
before anything changes (settling it at its last price would hide a missing feed; the safe
choice is to refuse). Prices of instruments the contract table does not know are skipped.
Then, for every account:

1. Each settled contract's last becomes its settlement price and the book is marked: position
   profit at the settlement, yesterday's lots (逐日盯市) against the previous settlement and
   today's against their open price; close profit as booked during the day.
2. The settled balance (结算准备金 / 当日结存):
   * 逐日盯市 (``cost = "by_date"``): static equity + close profit + position profit at the
     settlement − commission. It is the account's equity at the settlement price.
   * 逐笔 (``cost = "by_trade"``): static equity + close profit (against the open price) −
     commission, *excluding* floating profit: 上日结存(逐笔) = 上日结存(逐日) − floating
     profit of the held lots against their open price. A by-trade source's snapshot must send
     that pre-balance, or yesterday's profit is counted twice (its positions still carry their
     open price, and floating profit is marked against it every day).
3. The new day: pre_balance = the settled balance; deposit, withdraw, close profit and
   commission of the day = 0; frozen amounts released (day orders end); every lot becomes
   yesterday's whether or not its price moved; each settled contract's previous settlement =
   its settlement price, and its limits for the next day = settlement × (1 ± limit rate) on
   the tick (the feed's limits override them with its first tick). Contracts in the book that
   nobody holds and that have no settlement price lose their previous settlement (unknown).
4. The book's trading day becomes ``next_trading_day``. A settlement for another day than
   the book's (a replay of one already applied) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rules.book.columns import BookError, number, required
from rules.book.orders import release_all

if TYPE_CHECKING:
    from rules.book.book import AccountBook

_DAY = re.compile(r"^\d{8}$")


def parse_settlement(
    book: AccountBook, rec: Mapping[str, Any]
) -> tuple[str, str, np.ndarray, np.ndarray]:
    """Validate a settlement record: (day, next day, contract rows, prices); changes nothing
    but the registration of priced contracts the table knows."""
    day = str(required(rec, "trading_day", "settlement"))
    next_day = str(required(rec, "next_trading_day", "settlement"))
    for name, value in (("trading_day", day), ("next_trading_day", next_day)):
        if not _DAY.match(value):
            raise BookError(f"settlement: {name} {value!r} is not YYYYMMDD")
    if next_day <= day:
        raise BookError(f"settlement: next_trading_day {next_day} is not after {day}")
    if book.trading_day is not None and day != book.trading_day:
        raise BookError(f"settlement of {day} but the book is on trading day {book.trading_day}")
    prices = required(rec, "prices", "settlement")
    if not isinstance(prices, Mapping):
        raise BookError("settlement: prices must be a map of instrument to settlement price")
    parsed = {
        str(k): number(v, f"settlement price of {k}", "settlement") for k, v in prices.items()
    }
    c = book.contracts
    rows, values = [], []
    for name, price in parsed.items():
        r = c.known_row(name)
        if r is not None:
            rows.append(r)
            values.append(price)
    rows_a = np.asarray(rows, dtype=np.int64)
    n = book.n_positions
    lots = (book.pos["volume"][:n] > 0) & book.active[book.pos_account[:n]]
    held = np.bincount(book.pos_contract[:n], weights=lots, minlength=len(c)) > 0
    held[rows_a] = False
    if held.any():
        names = ", ".join(sorted(c.names[i] for i in np.flatnonzero(held)))
        raise BookError(f"settlement of {day}: no settlement price for held contract(s) {names}")
    return day, next_day, rows_a, np.asarray(values, dtype=np.float64)


def apply_settlement(book: AccountBook, rec: Mapping[str, Any]) -> np.ndarray:
    """Roll every account to the next trading day (module docstring); returns active rows."""
    _day, next_day, rows, prices = parse_settlement(book, rec)
    c = book.contracts
    c.last[rows] = prices
    figures = book.mark()
    na = book.n_accounts
    a = book.acc
    by_trade = book.by_trade[:na]
    floating = figures.position_profit
    a["pre_balance"][:na] = figures.equity - np.where(by_trade, floating, 0.0)
    for name in (
        "deposit",
        "withdraw",
        "close_profit",
        "commission",
        "frozen_margin",
        "frozen_commission",
    ):
        a[name][:na] = 0.0
    release_all(book)
    for name in ("frozen_margin", "frozen_commission"):
        a[name][:na] = 0.0
    n = book.n_positions
    book.pos["today_volume"][:n] = 0.0
    book.pos["today_open_price"][:n] = book.pos["open_price"][:n]
    nc = len(c)
    settled = np.zeros(nc, dtype=bool)
    settled[rows] = True
    c.pre_settlement[:nc] = np.where(settled, c.pre_settlement[:nc], np.nan)
    c.pre_settlement[rows] = prices
    c.upper_limit[:nc] = np.where(settled, c.upper_limit[:nc], np.nan)
    c.lower_limit[:nc] = np.where(settled, c.lower_limit[:nc], np.nan)
    c.new_day_limits(rows, prices)
    book._dirty.extend(range(n))
    book.trading_day = next_day
    book.mark()
    return np.flatnonzero(book.active[:na])
