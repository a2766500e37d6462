"""Reverse stress: per account, the smallest market move that takes it past the line.

Two families: every contract moved by the same fraction x (a market-wide move, up or down), and
the contracts of one commodity moved alone. Each is found from one exact re-mark at a small probe
move h: equity and margin are linear in the prices of a family when margin is on the last price
(single-side margin too: both sides scale by the same factor), so

    equity(x) = E + x·dE/dx,   margin(x) = M + x·dM/dx,   past the line when margin(x) ≥ equity(x)
    x* = (E − M) / (dM/dx − dE/dx)   on the side where the denominator has the sign of x.

Margin fixed at the previous settlement or the open price does not move (its derivative is 0),
which the probe measures as it is. An account already past the line has x* = 0; one the family
cannot push over (it holds nothing in it, or is hedged in it) has x* = inf. This extends the
liquidation-line distance (an adverse move per position) to moves of the market as a whole.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from rules.book import AccountBook

PROBE = 0.01


@dataclass(slots=True)
class ReverseStress:
    account_ids: list[str]
    down: np.ndarray  # smallest market-wide fall (a positive fraction) that crosses, inf if none
    up: np.ndarray  # smallest market-wide rise that crosses
    by_commodity: dict[str, tuple[np.ndarray, np.ndarray]]  # commodity -> (down, up)

    def nearest(self, i: int) -> tuple[str, float]:
        """The single move nearest to crossing for account row i: ("all-", 0.043) etc."""
        options = [("all-", self.down[i]), ("all+", self.up[i])]
        for name, (down, up) in self.by_commodity.items():
            options += [(f"{name}-", down[i]), (f"{name}+", up[i])]
        return min(options, key=lambda o: o[1])


def reverse_stress(book: AccountBook, commodities: bool = True) -> ReverseStress:
    """Smallest crossing moves for every active account (a copy of the book is probed)."""
    probe = copy.deepcopy(book)
    base = probe.mark()
    e0, m0 = np.array(base.equity), np.array(base.margin)
    c = probe.contracts
    nc = len(c)
    last = np.array(c.last[:nc])
    priced = np.isfinite(last)
    rows = np.flatnonzero(probe.active[: probe.n_accounts])

    def crossing(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        names = [c.names[i] for i in np.flatnonzero(mask & priced)]
        if not names:
            inf = np.full(rows.size, np.inf)
            return inf, inf.copy()
        idx = np.flatnonzero(mask & priced)
        probe.set_prices(names, last[idx] * (1 + PROBE))
        fig = probe.mark()
        de, dm = (np.array(fig.equity) - e0) / PROBE, (np.array(fig.margin) - m0) / PROBE
        probe.set_prices(names, last[idx])
        return _solve(e0[rows], m0[rows], de[rows], dm[rows])

    down, up = crossing(np.ones(nc, dtype=bool))
    by_commodity: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if commodities:
        names = np.asarray(c.commodity[:nc])
        for commodity in sorted(set(c.commodity[:nc])):
            by_commodity[commodity] = crossing(names == commodity)
    probe.mark()
    return ReverseStress([probe.account_ids[r] for r in rows], down, up, by_commodity)


def _solve(
    e: np.ndarray, m: np.ndarray, de: np.ndarray, dm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest fall and rise x ≥ 0 with m + x·dm ≥ e + x·de (signs per direction)."""
    gap = e - m  # > 0 while inside the line
    slope = dm - de  # d(margin − equity)/dx
    past = (gap <= 0) | (e <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(slope > 1e-12, gap / slope, np.inf)
        down = np.where(slope < -1e-12, gap / -slope, np.inf)
    up[past] = 0.0
    down[past] = 0.0
    # A fall of 100% or more is not a price move any more; report it as no crossing.
    down[down >= 1.0] = np.inf
    return down, up
