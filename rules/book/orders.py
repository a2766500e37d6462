"""Working orders: the margin and commission they freeze until filled or cancelled.

An order record (as the account bus carries it) is
``{"type": "order", "account_id", "order_ref", "instrument", "direction", "offset",
"volume", "price", "status": "working" | "partial" | "filled" | "cancelled",
"volume_left"}``. A working or partially filled order freezes, for its unfilled lots
(`volume_left`, default `volume`):

* margin, opens only: |price| × lots × multiplier × the broker's rate (exchange rate + the
  account's markup). Frozen margin is charged in full, both sides: CTP's single-side relief
  applies to positions, and a lock that fills is netted from then on.
* commission: the fee of those lots from the fee table (open rate, or for a close the rates
  of the lots it would take by the exchange's close order, rules.fees), × the policy's
  fee multiplier.

A later record of the same (account_id, order_ref) replaces the freeze; `filled` and
`cancelled` release it. The frozen amounts add to the snapshot's `frozen_margin` /
`frozen_commission` and so enter `available`. Settlement releases every order (day orders).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rules.book.columns import BookError, number, required, sign_of
from rules.book.trades import lots_held
from rules.fees import OFFSETS, CloseError, close_split, commission

if TYPE_CHECKING:
    from rules.book.book import AccountBook

STATUSES = ("working", "partial", "filled", "cancelled")


def apply_order(book: AccountBook, rec: Mapping[str, Any]) -> int:
    """Freeze or release the amounts of one order record; returns the account row."""
    account_id = str(required(rec, "account_id", "order"))
    order_ref = str(required(rec, "order_ref", "order"))
    status = str(required(rec, "status", "order"))
    if status not in STATUSES:
        raise BookError(f"{account_id}: order {order_ref}: status {status!r} not one of {STATUSES}")
    row = book.row_of(account_id)
    key = (row, order_ref)
    if status in ("filled", "cancelled"):
        _set_freeze(book, key, 0.0, 0.0)
        return row
    instrument = str(required(rec, "instrument", "order"))
    spec = book.contracts.table.spec(instrument)
    sign_of(required(rec, "direction", "order"))
    offset = str(rec.get("offset", "open"))
    if offset not in OFFSETS:
        raise BookError(f"{account_id}: order {order_ref}: offset {offset!r} not one of {OFFSETS}")
    volume = number(required(rec, "volume", "order"), "volume", account_id)
    left = number(rec.get("volume_left", volume), "volume_left", account_id)
    price = number(required(rec, "price", "order"), "price", account_id)
    if not 0 <= left <= volume:
        raise BookError(
            f"{account_id}: order {order_ref}: volume_left {left:g} not in [0, {volume:g}]"
        )
    fee_multiplier = float(book.fee_multiplier[row])
    if offset == "open":
        rate = spec.margin_rate + float(book.acc["margin_markup"][row])
        margin = abs(price) * left * spec.multiplier * rate
        fee = commission(spec, "open", price, 0.0, left, fee_multiplier)
    else:
        margin = 0.0
        held, today = lots_held(book, row, instrument, -sign_of(rec["direction"]))
        try:
            yd, td = close_split(spec, offset, left, held, today)
        except CloseError:  # the exchange will reject it; freeze the close fee meanwhile
            yd, td = left, 0.0
        fee = commission(spec, offset, price, yd, td, fee_multiplier)
    _set_freeze(book, key, margin, fee)
    return row


def _set_freeze(book: AccountBook, key: tuple[int, str], margin: float, fee: float) -> None:
    row = key[0]
    old_margin, old_fee = book.orders.pop(key, (0.0, 0.0))
    if margin or fee:
        book.orders[key] = (margin, fee)
    for name, old, new in (
        ("frozen_margin", old_margin, margin),
        ("frozen_commission", old_fee, fee),
    ):
        book.order_frozen[name][row] += new - old
        book.acc[name][row] += new - old


def release_all(book: AccountBook) -> None:
    """Every order's freeze released (the day's orders end at settlement)."""
    for name, arr in book.order_frozen.items():
        book.acc[name][: arr.shape[0]] -= arr
        arr[:] = 0.0
    book.orders.clear()
