"""Marking the book: per-position factors, values at the latest prices, sums per account.

Each position keeps factors that change only with its own events, so a price update costs a
few vector ops:

    profit   = units × price − cost_value          units = sign × volume × multiplier
    margin   = |price| × margin_units + fixed_margin (broker rate; the same for exchange)

`cost_value` carries the cost convention (逐日盯市 by date, 逐笔 by trade) and the margin price
type decides whether margin moves with the last price (`margin_units`) or is fixed
(`fixed_margin`). Account sums are exact (np.bincount over the positions of the accounts
re-summed, never deltas), margin through the single-side groups of rules.margin: per (account,
group, side) sums, the larger side charged where the exchange nets. A position is limit-locked
when its contract's last is at the limit against it (a long at limit-down, a short at
limit-up): it cannot be traded out, and its margin is stuck.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rules.account_math import FIGURES, MARGIN_PRICE_TYPES, account_figures
from rules.book.columns import FACTORS, VALUES, grow
from rules.margin import charged, newton_distance, side_sums

if TYPE_CHECKING:
    from rules.book.book import AccountBook


def refresh_factors(book: AccountBook) -> None:
    """Recompute the factors of position rows that changed since the last mark."""
    n = book.n_positions
    if book._factor["units"].shape[0] < n:
        old = book._factor["units"].shape[0]
        for name in FACTORS:
            book._factor[name] = grow(book._factor[name], n)
        book._dirty.extend(range(old, n))
    if not book._dirty:
        return
    rows = np.unique(np.fromiter(book._dirty, dtype=np.int64))
    rows = rows[rows < n]
    book._dirty.clear()
    book._pos_hedged = None  # lots or policies moved: which groups are hedged may have changed
    pos, acc = book.pos, book.pos_account[rows]
    volume, today = pos["volume"][rows], pos["today_volume"][rows]
    yesterday = volume - today
    lots = volume * pos["multiplier"][rows]
    sign = pos["sign"][rows]
    pre = book.contracts.pre_settlement[book.pos_contract[rows]]
    open_px, today_px = pos["open_price"][rows], pos["today_open_price"][rows]
    pre = np.where(np.isfinite(pre), pre, open_px)  # before the first settlement price
    # 逐日盯市: yesterday's lots at the previous settlement, today's at their open price.
    by_date_px = np.divide(yesterday * pre + today * today_px, volume, out=open_px.copy(),
                           where=volume > 0)  # fmt: skip
    cost_px = np.where(book.by_trade[acc], open_px, by_date_px)
    f = book._factor
    f["units"][rows] = sign * lots
    f["abs_units"][rows] = lots
    f["cost_value"][rows] = sign * lots * cost_px
    kind = book.margin_price[acc]
    on_last = kind == MARGIN_PRICE_TYPES.index("last")
    fixed_px = np.abs(np.choose(np.where(on_last, 0, kind), [pre, pre, open_px, by_date_px]))
    ex_rate = pos["margin_rate"][rows]
    rate = ex_rate + book.acc["margin_markup"][acc]
    f["margin_units"][rows] = np.where(on_last, lots * rate, 0.0)
    f["fixed_margin"][rows] = np.where(on_last, 0.0, fixed_px * lots * rate)
    f["ex_margin_units"][rows] = np.where(on_last, lots * ex_rate, 0.0)
    f["ex_fixed_margin"][rows] = np.where(on_last, 0.0, fixed_px * lots * ex_rate)


def revalue(book: AccountBook, rows: np.ndarray | slice) -> None:
    """Per-position profit, margins, notional, sensitivity and lock at the latest prices."""
    refresh_factors(book)
    n = book.n_positions
    for name in VALUES:
        book._value[name] = grow(book._value[name], n)
    f, v, c = book._factor, book._value, book.contracts
    contract = book.pos_contract[rows]
    price = c.last[contract]
    units = f["units"][rows]
    missing = np.isnan(price)
    if missing.any():  # no tick yet: cost stands in (no profit, margin at cost)
        cost_px = np.divide(f["cost_value"][rows], units, out=np.zeros_like(units),
                            where=units != 0)  # fmt: skip
        price = np.where(missing, cost_px, price)
    v["profit"][rows] = units * price - f["cost_value"][rows]
    var = price * f["margin_units"][rows]
    v["margin"][rows] = np.abs(var) + f["fixed_margin"][rows]
    v["exchange_margin"][rows] = (
        np.abs(price * f["ex_margin_units"][rows]) + f["ex_fixed_margin"][rows]
    )
    v["notional"][rows] = np.abs(price) * f["abs_units"][rows]
    v["raw_sensitivity"][rows] = np.sign(units) * var
    # Locked per contract first (a few hundred), then one byte gathered per position.
    n_c = len(c)
    with np.errstate(invalid="ignore"):
        at_lower = c.last[:n_c] <= c.lower_limit[:n_c]  # a long cannot sell out
        at_upper = c.last[:n_c] >= c.upper_limit[:n_c]  # a short cannot buy back
    v["locked"][rows] = ((units > 0) & at_lower[contract]) | ((units < 0) & at_upper[contract])


def holdings(book: AccountBook, contracts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions in `contracts`, the accounts holding them (ascending), every position of
    those accounts, grouped by account), from position indexes by contract and by account (built once
    per change of the book's shape): an incremental mark reads only what those accounts hold,
    never a scan of every position."""
    n, na = book.n_positions, book.n_accounts
    index = getattr(book, "_holdings", None)
    if index is None or index[0] != (n, na, len(book.contracts)):
        pc, pa = book.pos_contract[:n], book.pos_account[:n]
        by_c = np.argsort(pc, kind="stable")
        by_a = np.argsort(pa, kind="stable")
        c_start = np.searchsorted(pc[by_c], np.arange(len(book.contracts) + 1))
        a_start = np.searchsorted(pa[by_a], np.arange(na + 1))
        index = book._holdings = ((n, na, len(book.contracts)), by_c, c_start, by_a, a_start)
    _, by_c, c_start, by_a, a_start = index
    pos_rows = _take(by_c, c_start, np.asarray(contracts, dtype=np.int64))
    mask = np.zeros(na, dtype=bool)  # a byte per account: cheaper than sorting the holders
    mask[book.pos_account[pos_rows]] = True
    holders = np.flatnonzero(mask)
    # By account, each account's positions ascending: every per-account (and per-key) sum
    # adds the same values in the same order as over ascending rows, so no sort is needed.
    return pos_rows, holders, _take(by_a, a_start, holders)


def _take(order: np.ndarray, start: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The members of `rows` in a CSR index (order, start), concatenated."""
    lo = start[rows]
    lens = start[rows + 1] - lo
    if not lens.size:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lens)
    return order[np.repeat(lo - (ends - lens), lens) + np.arange(int(ends[-1]))]


def hedged_positions(book: AccountBook) -> np.ndarray:
    """Per position: is its netting group hedged (single-side, lots held on both sides)?
    Cached between events: prices alone never change it."""
    if book._pos_hedged is None or book._pos_hedged.shape[0] != book.n_positions:
        n, n_keys = book.n_positions, book.n_keys
        keys = book.pos_key[:n]
        side = (book.pos["sign"][:n] < 0).astype(np.int64)
        held = side_sums((book.pos["volume"][:n] > 0).astype(np.float64), 2 * keys + side, n_keys)
        hedged = book.key_single[:n_keys] & (held[:, 0] > 0) & (held[:, 1] > 0)
        book._pos_hedged = hedged[keys]
    return book._pos_hedged


def _hedged_groups(
    book: AccountBook, pos_rows: np.ndarray | slice
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(in a hedged group?, each such position's side, the hedged keys, each position's place
    among them) for `pos_rows`. Lots and policies decide them, never prices: a full mark takes
    them from a cache kept beside `hedged_positions`' (the sort they need is a third of a full
    mark's time at 500k positions)."""
    hedged = hedged_positions(book)
    full = isinstance(pos_rows, slice)
    cached = getattr(book, "_hedged_groups", None)
    if full and cached is not None and cached[0] is hedged:
        return cached[1]
    in_h = hedged[pos_rows]
    keys = book.pos_key[pos_rows][in_h]
    side_h = (book.pos["sign"][pos_rows][in_h] < 0).astype(np.int64)
    hk, at = np.unique(keys, return_inverse=True)
    groups = (in_h, side_h, hk, at)
    if full:
        book._hedged_groups = (hedged, groups)
    return groups


def sum_into_figures(book: AccountBook, acc_rows: np.ndarray, pos_rows: np.ndarray | slice) -> None:
    """Exact sums of positions into account figures; `pos_rows` are every position of
    `acc_rows` (ascending; so each single-side group's sides are complete), in ascending
    order within each account.

    Every sum runs in the space of `acc_rows` (each position's account mapped to its place
    there), so an incremental mark costs what its accounts hold, not what the book holds;
    np.bincount adds each account's positions in the same order either way (same figures)."""
    book.figures  # noqa: B018  (grows the figure columns)
    v = book._value
    acc_rows = np.asarray(acc_rows, dtype=np.int64)
    na = acc_rows.shape[0]
    accounts = book.pos_account[pos_rows]
    place = acc_rows  # every account (a full mark): rows are their own places
    if na != book.n_accounts:
        place = np.empty(book.n_accounts, dtype=np.int64)  # only acc_rows' entries are read
        place[acc_rows] = np.arange(na)
    local = accounts if na == book.n_accounts else place[accounts]

    def per_account(values: np.ndarray) -> np.ndarray:
        return np.bincount(local, weights=values, minlength=na)

    a = book.acc
    r: np.ndarray | slice = slice(0, na) if na == book.n_accounts else acc_rows  # views if all
    static = a["pre_balance"][r] + a["deposit"][r] - a["withdraw"][r]
    profit = per_account(v["profit"][pos_rows])
    notional = per_account(v["notional"][pos_rows])
    margin_pos, ex_pos = v["margin"][pos_rows], v["exchange_margin"][pos_rows]
    sens_pos = v["raw_sensitivity"][pos_rows]
    # Both sides charged unless a netting group holds lots on both sides (hedged): then the
    # side not charged is taken off. Decided by lots held, not margin, so an account's figures
    # never depend on other accounts' (and the backtest's paths repeat it exactly).
    margin, ex_margin = per_account(margin_pos), per_account(ex_pos)
    sensitivity = per_account(sens_pos)
    margin_all, sens_all = margin, sensitivity  # before the hedged sides come off
    dist_margin, dist_sens = margin, sensitivity
    v["charged"][pos_rows] = 1.0
    v["ex_charged"][pos_rows] = 1.0
    v["margin_sensitivity"][pos_rows] = sens_pos
    in_h, side_h, hk, at = _hedged_groups(book, pos_rows)
    if hk.size:
        charged_pos = np.ones(len(margin_pos))
        ex_charged_pos = np.ones(len(margin_pos))
        slot, nh = 2 * at + side_h, hk.size
        k_acc = book.key_account[hk]
        k_local = k_acc if na == book.n_accounts else place[k_acc]
        m = side_sums(margin_pos[in_h], slot, nh)
        e = side_sums(ex_pos[in_h], slot, nh)
        sv = side_sums(sens_pos[in_h], slot, nh)
        every = np.ones(nh, dtype=bool)
        _, wl, ws = charged(m, every)
        _, ewl, ews = charged(e, every)

        def per_key(values: np.ndarray) -> np.ndarray:
            return np.bincount(k_local, weights=values, minlength=na)

        margin = margin - per_key(m[:, 0] * ~wl + m[:, 1] * ~ws)
        ex_margin = ex_margin - per_key(e[:, 0] * ~ewl + e[:, 1] * ~ews)
        sensitivity = sensitivity - per_key(sv[:, 0] * ~wl + sv[:, 1] * ~ws)
        short = side_h == 1
        charged_pos[in_h] = np.where(short, ws[at], wl[at])
        ex_charged_pos[in_h] = np.where(short, ews[at], ewl[at])
        equity = static + a["close_profit"][r] + profit - a["commission"][r]
        base_m = margin_all - per_key(m[:, 0] + m[:, 1])
        base_s = sens_all - per_key(sv[:, 0] + sv[:, 1])
        dist_margin, dist_sens = newton_distance(
            equity, notional, m, sv, every, k_local, na, base_m, base_s
        )
        v["charged"][pos_rows] = charged_pos
        v["ex_charged"][pos_rows] = ex_charged_pos
        v["margin_sensitivity"][pos_rows] = sens_pos * charged_pos
    locked = v["locked"][pos_rows]
    any_locked = bool(locked.any())  # rare: skip two sums when nothing is locked
    zeros = np.zeros(na)
    figures = account_figures(
        static, a["close_profit"][r], a["commission"][r],
        a["frozen_margin"][r] + a["frozen_commission"][r],
        profit, margin, ex_margin, notional, sensitivity,
        distance_margin=dist_margin, distance_sensitivity=dist_sens,
        locked_contracts=per_account(locked) if any_locked else zeros,
        locked_margin=per_account(locked * v["margin"][pos_rows] * v["charged"][pos_rows])
        if any_locked
        else zeros,
    )  # fmt: skip
    for name in FIGURES:
        book._fig[name][r] = getattr(figures, name)
