"""Fills: the lots a close takes, close profit by cost convention, commission from fees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rules.book.columns import BookError, number, required, sign_of
from rules.fees import CLOSE_OFFSETS, OFFSETS, CloseError, close_split, commission

if TYPE_CHECKING:
    from rules.book.book import AccountBook


def apply_trade(book: AccountBook, rec: Mapping[str, Any]) -> int:
    """Apply a fill. `direction` is the order's (long buys, short sells).

    Open: averages the open prices (all lots and today's lots). Close: the lots the
    exchange's close order takes (rules.fees: SHFE/INE `close` yesterday's only and
    `close_today` today's; elsewhere first-in first-out); close profit is against the
    previous settlement for yesterday's lots and the open price for today's (逐日盯市), or
    against the average open price (逐笔). Commission: the record's `commission`, else the
    fee table's × the policy's fee multiplier.
    """
    account_id = str(required(rec, "account_id", "trade"))
    row = book.row_of(account_id)
    order_sign = sign_of(required(rec, "direction", "trade"))
    offset = str(rec.get("offset", "open"))
    volume = number(required(rec, "volume", "trade"), "volume", account_id)
    price = number(required(rec, "price", "trade"), "price", account_id)
    if volume <= 0:
        raise BookError(f"{account_id}: trade volume must be positive, got {volume:g}")
    if offset not in OFFSETS:
        raise BookError(f"{account_id}: offset {offset!r} not one of {'/'.join(OFFSETS)}")
    instrument = str(required(rec, "instrument", "trade"))
    spec = book.contracts.table.spec(instrument)
    given = rec.get("commission")
    fee = None if given is None else number(given, "commission", account_id)
    if offset == "open":
        p = book._position_row(row, instrument, order_sign)
        held, today = book.pos["volume"][p], book.pos["today_volume"][p]
        book.pos["open_price"][p] = (book.pos["open_price"][p] * held + price * volume) / (
            held + volume
        )
        book.pos["today_open_price"][p] = (
            book.pos["today_open_price"][p] * today + price * volume
        ) / (today + volume)
        book.pos["volume"][p] = held + volume
        book.pos["today_volume"][p] = today + volume
        parts = (0.0, volume)
    else:
        parts = close(book, row, account_id, instrument, -order_sign, offset, volume, price)
    if fee is None:
        fee = commission(spec, offset, price, *parts, float(book.fee_multiplier[row]))
    book.acc["commission"][row] += fee
    return row


def close(book: AccountBook, row: int, account_id: str, instrument: str, sign: int, offset: str,
           volume: float, price: float) -> tuple[float, float]:  # fmt: skip
    assert offset in CLOSE_OFFSETS
    p = book.position_index.get((row, book.contracts.index.get(instrument, -1), sign))
    held, today = lots_held(book, row, instrument, sign)
    spec = book.contracts.table.spec(instrument)
    try:
        if p is None:
            raise CloseError(f"closing {volume:g} but holds no lots")
        from_yesterday, from_today = close_split(spec, offset, volume, held, today)
    except CloseError as exc:
        raise BookError(f"{account_id}: {instrument} {offset}: {exc}") from None
    c = int(book.pos_contract[p])
    mult = book.pos["multiplier"][p]
    pre = book.contracts.pre_settlement[c]
    if book.by_trade[row]:
        cost = book.pos["open_price"][p] * volume
    else:
        yd_cost = pre if np.isfinite(pre) else book.pos["open_price"][p]
        cost = yd_cost * from_yesterday + book.pos["today_open_price"][p] * from_today
    book.acc["close_profit"][row] += sign * (price * volume - cost) * mult
    book.pos["volume"][p] = held - volume
    book.pos["today_volume"][p] = today - from_today
    book._dirty.append(p)
    return from_yesterday, from_today


def lots_held(book: AccountBook, row: int, instrument: str, sign: int) -> tuple[float, float]:
    """(every lot, today's lots) of an account's position (0, 0 if none)."""
    p = book.position_index.get((row, book.contracts.index.get(instrument, -1), sign))
    if p is None:
        return 0.0, 0.0
    return float(book.pos["volume"][p]), float(book.pos["today_volume"][p])
