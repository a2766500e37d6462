"""Vectorized CTP account arithmetic over many accounts at once.

Per-account sums are `np.bincount` over the account index, so re-marking 50,000 accounts is a
handful of numpy calls rather than a Python loop. Formulas follow CTP:

    static equity  = pre_balance + deposit − withdraw
    equity         = static equity + close_profit + position_profit − commission
    position profit= sign × (price − cost) × volume × multiplier
                     cost: 逐日盯市 (by date) yesterday's lots at the previous settlement and
                     today's at their open price; 逐笔 (by trade) every lot at its open price
    margin         = margin price × volume × multiplier × margin rate
                     broker rate = exchange rate + the broker's markup; the margin price is one
                     of CTP's margin price types (see MARGIN_PRICE_TYPES)
    available      = equity − margin − frozen_margin − frozen_commission
    risk degree    = margin / equity (broker), exchange risk degree = exchange margin / equity

Past the line: an account whose equity is ≤ 0 has lost its margin whatever the ratio says.
Its risk degree (both rates) is +inf — also with no margin — so a rule `risk_degree > 0.8`
fires, a descending sort puts it first and `np.isfinite` tells it apart; its liquidation
distance is 0 (ascending sorts put it first too). Margin is charged on |price| (rules.margin),
so it is never negative and a ratio never turns negative.

Liquidation-line distance: move every price against its position by a fraction x. Each
position loses x × price × units, so equity(x) = E − x·N with N the gross notional; margin on
the last price moves with it, margin(x) = M − x·S with S = Σ sign × price × margin units.
Risk degree reaches 100% at x = (E − M) / (N − S); for one contract, N and S are that contract's.
Under single-side margin the margin is piecewise linear in x; the book passes the margin and
sensitivity of the sides charged at the crossing (rules.margin.newton_distance), for which the
same formula is exact.

Limit-locked holdings: `locked_contracts` counts the held contracts locked at their limit
against the account (a long at limit-down, a short at limit-up: no way out today), and
`locked_margin` is the margin charged on them (the part of margin that cannot be freed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COST_CONVENTIONS = ("by_date", "by_trade")  # 逐日盯市, 逐笔
# CTP margin price types (THOST_FTDC_MPT_*): previous settlement, last price, average open
# price, open price (yesterday's lots at the previous settlement, today's at their open price).
MARGIN_PRICE_TYPES = ("pre_settlement", "last", "average", "open")


@dataclass(slots=True)
class AccountFigures:
    """Per-account figures after a mark, aligned with the account rows of the caller."""

    static_equity: np.ndarray
    position_profit: np.ndarray
    equity: np.ndarray
    margin: np.ndarray
    available: np.ndarray
    risk_degree: np.ndarray
    exchange_margin: np.ndarray
    exchange_risk_degree: np.ndarray
    liquidation_distance: np.ndarray
    locked_contracts: np.ndarray
    locked_margin: np.ndarray


FIGURES = tuple(AccountFigures.__slots__)


def position_profit(
    sign: np.ndarray,
    volume: np.ndarray,
    cost_price: np.ndarray,
    price: np.ndarray,
    multiplier: np.ndarray,
) -> np.ndarray:
    """Floating profit per position; `sign` is +1 for long, −1 for short."""
    return sign * (price - cost_price) * volume * multiplier


def position_margin(
    volume: np.ndarray, price: np.ndarray, multiplier: np.ndarray, margin_rate: np.ndarray
) -> np.ndarray:
    """Margin per position at `margin_rate` (broker rate = exchange rate + markup), on |price|."""
    return np.abs(price) * volume * multiplier * margin_rate


def risk_degree(margin: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """margin / equity; an account whose equity is ≤ 0 is past the line: +inf (margin or not)."""
    out = np.full(np.shape(margin), np.inf)
    positive = equity > 0
    np.divide(margin, equity, out=out, where=positive)
    return out


def liquidation_distance(
    equity: np.ndarray, margin: np.ndarray, notional: np.ndarray, margin_sensitivity: np.ndarray
) -> np.ndarray:
    """Uniform adverse move (fraction of price) that takes risk degree to 100%.

    0 when the account is already at or past the line (equity ≤ 0 included); inf when it
    holds nothing and has equity.
    """
    denom = notional - margin_sensitivity
    out = np.full(np.shape(equity), np.inf)
    held = denom > 0
    np.divide(equity - margin, denom, out=out, where=held)
    out = np.where(held, np.maximum(out, 0.0), out)
    return np.where(equity > 0, out, 0.0)


def account_figures(
    static_equity: np.ndarray,
    close_profit: np.ndarray,
    commission: np.ndarray,
    frozen: np.ndarray,
    profit: np.ndarray,
    margin: np.ndarray,
    exchange_margin: np.ndarray,
    notional: np.ndarray,
    margin_sensitivity: np.ndarray,
    *,
    distance_margin: np.ndarray | None = None,
    distance_sensitivity: np.ndarray | None = None,
    locked_contracts: np.ndarray | None = None,
    locked_margin: np.ndarray | None = None,
) -> AccountFigures:
    """Every account figure from the summed position figures.

    `distance_margin` / `distance_sensitivity`: the margin line the liquidation distance
    follows when it is not `margin` / `margin_sensitivity` (single-side margin, rules.margin).
    """
    equity = static_equity + close_profit + profit - commission
    zeros = np.zeros(np.shape(equity))
    d_margin = margin if distance_margin is None else distance_margin
    d_sens = margin_sensitivity if distance_sensitivity is None else distance_sensitivity
    return AccountFigures(
        static_equity=static_equity,
        position_profit=profit,
        equity=equity,
        margin=margin,
        available=equity - margin - frozen,
        risk_degree=risk_degree(margin, equity),
        exchange_margin=exchange_margin,
        exchange_risk_degree=risk_degree(exchange_margin, equity),
        liquidation_distance=liquidation_distance(equity, d_margin, notional, d_sens),
        locked_contracts=zeros if locked_contracts is None else locked_contracts,
        locked_margin=zeros if locked_margin is None else locked_margin,
    )


def mark_to_market(
    n_accounts: int,
    pos_account: np.ndarray,
    sign: np.ndarray,
    volume: np.ndarray,
    cost_price: np.ndarray,
    multiplier: np.ndarray,
    margin_rate: np.ndarray,
    price: np.ndarray,
    static_equity: np.ndarray,
    close_profit: np.ndarray,
    commission: np.ndarray,
    frozen: np.ndarray,
    exchange_margin_rate: np.ndarray | None = None,
) -> AccountFigures:
    """Mark every account at once, margin on the last price (the reference form of the math,
    both sides of a two-way position charged: single-side margin is the book's, rules.margin).

    `price` is per position; `frozen` is frozen margin plus frozen commission per account.
    """
    pnl = position_profit(sign, volume, cost_price, price, multiplier)
    units = volume * multiplier
    pos_margin = np.abs(price) * units * margin_rate
    ex_rate = margin_rate if exchange_margin_rate is None else exchange_margin_rate

    def per_account(values: np.ndarray) -> np.ndarray:
        return np.bincount(pos_account, weights=values, minlength=n_accounts)

    return account_figures(
        static_equity,
        close_profit,
        commission,
        frozen,
        per_account(pnl),
        per_account(pos_margin),
        per_account(np.abs(price) * units * ex_rate),
        per_account(np.abs(price) * units),
        per_account(sign * price * units * margin_rate),
    )
