"""The backtest's input: ticks as columns, coalesced into the price steps a shard would see.

Split from rules.engine.backtest (the replay) because this is data preparation with its own
rules: per step of `step_s` data seconds, the latest tick of each book contract whose price (or
previous settlement) moved, in CSR form; and which accounts hold which contract. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rules.book import AccountBook
from rules.engine.alerts import trading_day


@dataclass
class Ticks:
    """Time-ordered ticks as columns; `idx` indexes `instruments`."""

    instruments: list[str]
    idx: np.ndarray
    ts: np.ndarray
    last: np.ndarray
    volume: np.ndarray
    open_interest: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    pre_settlement: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass
class Steps:
    """Coalesced price changes of the book's contracts: per step, the last tick of each
    contract whose price moved (CSR: updates of step k are start[k]:start[k+1])."""

    contract: np.ndarray
    last: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    pre: np.ndarray
    start: np.ndarray
    ts: np.ndarray  # per step: data time of its latest update (when it is evaluated)
    structural: np.ndarray  # per step: a new settlement price changes cost factors

    def __len__(self) -> int:
        return int(self.ts.shape[0])


def coalesce(ticks: Ticks, book: AccountBook, step_s: float) -> Steps:
    """Per step of `step_s` data seconds, the latest tick of each book contract that changed
    its price (or its previous settlement) — what a feed's coalesced update would carry."""
    lookup = np.array([book.contracts.index.get(n, -1) for n in ticks.instruments] or [-1])
    rows = lookup[ticks.idx] if len(ticks) else np.zeros(0, dtype=np.int64)
    keep = np.flatnonzero(rows >= 0)
    c = rows[keep]
    step = np.floor(ticks.ts[keep] / step_s).astype(np.int64)
    key = step * max(len(book.contracts), 1) + c
    _, first_rev = np.unique(key[::-1], return_index=True)
    sel = keep[len(key) - 1 - first_rev]  # last tick of each (step, contract), by key order
    c, step = rows[sel], np.floor(ticks.ts[sel] / step_s).astype(np.int64)
    last, pre = ticks.last[sel], ticks.pre_settlement[sel]
    by_contract = np.lexsort((step, c))
    prev_last = np.full(sel.shape[0], np.nan)
    prev_pre = np.full(sel.shape[0], np.nan)
    same = np.zeros(sel.shape[0], dtype=bool)
    same[by_contract[1:]] = c[by_contract[1:]] == c[by_contract[:-1]]
    prev_last[by_contract[1:]] = last[by_contract[:-1]]
    ffill_pre = _ffill_by_group(pre[by_contract], c[by_contract])
    prev_pre[by_contract[1:]] = ffill_pre[:-1]
    prev_last[~same] = np.nan
    prev_pre[~same] = np.nan
    pre_moved = np.isfinite(pre) & (pre != prev_pre)
    moved = (last != prev_last) | pre_moved
    order = np.flatnonzero(moved)  # still in (step, contract) order
    step = step[order]
    if step.size == 0:
        empty = np.zeros(0)
        return Steps(empty.astype(np.int64), empty, empty, empty, empty, np.zeros(1, np.int64),
                     empty, empty.astype(bool))  # fmt: skip
    edges = np.flatnonzero(np.diff(step)) + 1
    start = np.concatenate([[0], edges, [step.size]]).astype(np.int64)
    ts = np.maximum.reduceat(ticks.ts[sel][order], start[:-1])
    structural = np.logical_or.reduceat(pre_moved[order], start[:-1])
    return Steps(c[order], last[order], ticks.upper[sel][order], ticks.lower[sel][order],
                 pre[order], start, ts, structural)  # fmt: skip


def _ffill_by_group(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs within runs of equal `group` (values sorted by group, then time)."""
    n = values.shape[0]
    idx = np.where(np.isfinite(values), np.arange(n), -1)
    starts = np.r_[True, group[1:] != group[:-1]] if n else np.zeros(0, dtype=bool)
    run_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0)) if n else idx
    idx = np.maximum.accumulate(idx)
    out = np.where(idx >= run_start, values[np.maximum(idx, 0)], np.nan) if n else values
    return out


def _holders(book: AccountBook) -> tuple[np.ndarray, np.ndarray]:
    """Per contract row, the account rows holding it (CSR)."""
    n = book.n_positions
    held = np.flatnonzero(book.pos["volume"][:n] > 0)
    c, a = book.pos_contract[held], book.pos_account[held]
    order = np.lexsort((a, c))
    c, a = c[order], a[order]
    starts = np.searchsorted(c, np.arange(len(book.contracts) + 1))
    return starts.astype(np.int64), a.astype(np.int64)


def settlement_steps(steps: Steps) -> dict[int, tuple[str, str, float]]:
    """Steps that open a new trading day (rules.engine.alerts.trading_day: night trading
    belongs to the next day): step → (day settled, next day, data time of its last step)."""
    if len(steps) < 2:
        return {}
    hours = np.floor(steps.ts / 3600.0)  # Beijing time is UTC+8: a day rolls on the hour
    uniq, inverse = np.unique(hours, return_inverse=True)
    day_of = np.array([trading_day(h * 3600.0) for h in uniq.tolist()])[inverse]
    at = np.flatnonzero(day_of[1:] != day_of[:-1]) + 1
    return {int(k): (str(day_of[k - 1]), str(day_of[k]), float(steps.ts[k - 1])) for k in at}


def limit_candidates(
    book: AccountBook, holders: tuple[np.ndarray, np.ndarray], steps: Steps, k0: int, k1: int
) -> np.ndarray:
    """Accounts holding a contract whose price within steps k0..k1 (or carried into them)
    comes within a tick of a daily limit: the only ones whose limit-locked holdings can be
    non-zero there (a position is locked at the limit against it: long at the lower, short
    at the upper; either side is taken, so the set is a superset)."""
    nc = len(book.contracts)
    a0, a1 = int(steps.start[k0]), int(steps.start[k1])
    carried = book.contracts.last[:nc]
    p_lo, p_hi = carried.copy(), carried.copy()
    np.fmin.at(p_lo, steps.contract[a0:a1], steps.last[a0:a1])
    np.fmax.at(p_hi, steps.contract[a0:a1], steps.last[a0:a1])
    tick = np.array([s.tick_size for s in book.contracts.specs[:nc]])
    with np.errstate(invalid="ignore"):
        near = (p_lo <= book.contracts.lower_limit[:nc] + tick) | (
            p_hi >= book.contracts.upper_limit[:nc] - tick
        )
    starts, accounts = holders
    mask = np.zeros(book.n_accounts, dtype=bool)
    for c in np.flatnonzero(near).tolist():
        if c + 1 < len(starts):
            mask[accounts[starts[c] : starts[c + 1]]] = True
    return np.flatnonzero(mask & book.active[: book.n_accounts])


def unpriced_at_cost(book: AccountBook) -> np.ndarray:
    """Last price per contract, and for a held contract the data has not priced yet (a month
    that starts trading after the day) its held lots' average open price: the price the book
    marks it at until its first tick, so settling it there changes no figure."""
    nc = len(book.contracts)
    last = np.array(book.contracts.last[:nc])
    n = book.n_positions
    contract, volume = book.pos_contract[:n], book.pos["volume"][:n]
    value = np.bincount(contract, weights=volume * book.pos["open_price"][:n], minlength=nc)
    lots = np.bincount(contract, weights=volume, minlength=nc)
    missing = ~np.isfinite(last) & (lots > 0)
    last[missing] = value[missing] / lots[missing]
    return last
