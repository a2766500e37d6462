"""Commission from the fee table and which lots a close consumes, per exchange.

Pure (stdlib only). Two questions every fill raises before the account can be marked:

**Which lots does a close take?** (平今 / 平昨)

* SHFE and INE keep today's and yesterday's lots apart at the exchange: a plain `close`
  (CTP ``THOST_FTDC_OF_Close``) closes *yesterday's* lots only, `close_today` today's only,
  `close_yesterday` is the same as `close`. Closing more than that side holds is an error, so
  the book refuses it rather than guessing.
* DCE, CZCE, GFEX and CFFEX have no separate close-today instruction: CTP treats
  `close_today` / `close_yesterday` there as a plain `close`, and the exchange matches it
  first-in first-out (先开先平: yesterday's lots first, then today's), as the simulators of
  CTP accounts do (e.g. TqSim freezes and closes ``his`` before ``today`` off SHFE/INE).
  Exception, documented by the same sources: where the exchange charges *less* to close
  today's lots than yesterday's (a close-today fee reduction or waiver) it closes today's lots
  first (后开先平) so the client gets the reduction. The book follows that rule from the
  product's fees: ``fee_close_today < fee_close`` on a non-SHFE/INE product means today's
  lots first.

**What does it cost?** (手续费) From the contract table: ``fee_by = "volume"`` is yuan per lot,
``"turnover"`` a fraction of |price| × volume × multiplier; the open rate for opens, the close
rate for yesterday's lots, the close-today rate for today's. A broker charges a multiple of the
exchange's fees (the account policy's ``fee_multiplier``). A trade record that carries its own
``commission`` keeps it: the source knows what it was charged. Turnover fees use |price| so a
fill at a negative price never earns a negative fee.
"""

from __future__ import annotations

from typing import Any

CLOSE_OFFSETS = ("close", "close_today", "close_yesterday")
OFFSETS = ("open", *CLOSE_OFFSETS)
SPLIT_CLOSE_EXCHANGES = frozenset({"SHFE", "INE"})  # close today / close yesterday apart


class CloseError(ValueError):
    """A close the exchange would reject (more lots than the side it names holds)."""


def today_first(spec: Any) -> bool:
    """Off SHFE/INE: does an unqualified close take today's lots first (close-today fee cut)?"""
    return spec.exchange not in SPLIT_CLOSE_EXCHANGES and spec.fee_close_today < spec.fee_close


def close_split(
    spec: Any, offset: str, volume: float, held: float, today: float
) -> tuple[float, float]:
    """(lots from yesterday, lots from today) that a close of `volume` consumes.

    `held` is every lot of the position, `today` today's lots among them. Raises CloseError
    naming what is missing when the exchange would reject the close.
    """
    yesterday = held - today
    if spec.exchange in SPLIT_CLOSE_EXCHANGES:
        if offset == "close_today":
            if volume > today + 1e-9:
                raise CloseError(f"closing {volume:g} but holds {today:g} of today's lots")
            return 0.0, volume
        if volume > yesterday + 1e-9:
            raise CloseError(
                f"closing {volume:g} but holds {yesterday:g} of yesterday's lots "
                f"({spec.exchange} needs close_today for today's {today:g})"
            )
        return volume, 0.0
    if volume > held + 1e-9:
        raise CloseError(f"closing {volume:g} but holds {held:g} lots")
    if today_first(spec):
        from_today = min(volume, today)
        return volume - from_today, from_today
    from_yesterday = min(volume, yesterday)
    return from_yesterday, volume - from_yesterday


def fee(spec: Any, rate: float, price: float, volume: float) -> float:
    """The exchange fee of `volume` lots at `rate` (per lot, or per yuan of turnover)."""
    if spec.fee_by == "turnover":
        return rate * abs(price) * volume * spec.multiplier
    return rate * volume


def commission(
    spec: Any,
    offset: str,
    price: float,
    from_yesterday: float,
    from_today: float,
    multiplier: float = 1.0,
) -> float:
    """Commission of one fill: open rate for an open (`from_today` is then the lots opened),
    close rate for yesterday's lots, close-today rate for today's; × the broker's multiplier."""
    if offset == "open":
        exchange_fee = fee(spec, spec.fee_open, price, from_yesterday + from_today)
    else:
        exchange_fee = fee(spec, spec.fee_close, price, from_yesterday) + fee(
            spec, spec.fee_close_today, price, from_today
        )
    return exchange_fee * multiplier
