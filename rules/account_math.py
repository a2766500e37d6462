"""Vectorized CTP account arithmetic over many accounts at once.

Positions are columns (one row per account × contract × direction); per-account sums are
`np.bincount` over the account index, so re-marking 50,000 accounts is a handful of numpy calls
rather than a Python loop. Formulas follow CTP (see docs/design.md):

    static equity  = pre_balance + deposit − withdraw
    equity         = static equity + close_profit + position_profit − commission
    position profit= sign × (price − cost) × volume × multiplier
    margin         = price × volume × multiplier × margin_rate
    available      = equity − margin − frozen_margin − frozen_commission
    risk degree    = margin / equity
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class AccountFigures:
    """Per-account figures after a mark, aligned with the account slots of the caller."""

    static_equity: np.ndarray
    position_profit: np.ndarray
    equity: np.ndarray
    margin: np.ndarray
    available: np.ndarray
    risk_degree: np.ndarray


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
    """Margin per position at `margin_rate` (broker rate = exchange rate + markup)."""
    return price * volume * multiplier * margin_rate


def risk_degree(margin: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """margin / equity; an account with margin and no positive equity is infinitely at risk."""
    out = np.zeros_like(margin, dtype=np.float64)
    positive = equity > 0
    np.divide(margin, equity, out=out, where=positive)
    out[~positive & (margin > 0)] = np.inf
    return out


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
) -> AccountFigures:
    """Mark every account at once.

    `price` is per position (the caller gathers last prices by contract index); `frozen` is
    frozen margin plus frozen commission per account.
    """
    pnl = position_profit(sign, volume, cost_price, price, multiplier)
    pos_margin = position_margin(volume, price, multiplier, margin_rate)
    profit = np.bincount(pos_account, weights=pnl, minlength=n_accounts)
    margin = np.bincount(pos_account, weights=pos_margin, minlength=n_accounts)
    equity = static_equity + close_profit + profit - commission
    return AccountFigures(
        static_equity=static_equity,
        position_profit=profit,
        equity=equity,
        margin=margin,
        available=equity - margin - frozen,
        risk_degree=risk_degree(margin, equity),
    )
