"""Market statistics of a whole recorded day at once: vectorized over time, per contract.

rules.market_stats folds a live feed's ticks one data second at a time (state in, state out),
which is what a feed must do and costs a fixed number of numpy calls per second of data — about
40,000 of them for a full market day, most of a backtest's time. A backtest has the whole day:
every (contract, second) slice is known in advance, so each statistic is a few operations over
whole arrays. Ticks are sorted by contract (stable, so each contract keeps its time order) and
cut into groups, one per (contract, data second) — exactly the slices MarketStats folds.

The figures are the same numbers, bit for bit, as folding the ticks second by second
(tests/rules/test_market_series.py): every reduction runs over the same ticks in the same order,
and the rolling windows' running totals are the same sequence of floating additions and
subtractions — a slice's sums added to its bucket and to the window total, a bucket's sum taken
out when the global data clock moves it out of the window, the whole window emptied when the
clock jumps past it (lunch, night) — replayed with np.add.accumulate per contract and segment.

Precondition: the ticks' data seconds do not go back (a recorded day read in time order);
`series` raises ValueError otherwise and the caller folds step by step instead.
Pure: numpy and stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rules.contracts import limit_prices
from rules.market_signals import StatsParams, deltas, log_returns, relative_moves, spikes
from rules.market_stats import TRADING_SECONDS_PER_YEAR


@dataclass(slots=True)
class SeriesSignals:
    """SliceSignals for every (contract, second) group of a day, groups sorted by (row, sec)."""

    rows: np.ndarray
    sec: np.ndarray  # data second of the group
    ts: np.ndarray  # exchange time of the group's last tick
    last: np.ndarray
    jump_z: np.ndarray
    near_limit: np.ndarray
    limit_side: np.ndarray
    locked: np.ndarray
    volume_ratio: np.ndarray
    oi_ratio: np.ndarray
    rv: dict[int, np.ndarray] = field(default_factory=dict)
    nonpositive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    nonpositive_episode: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    first: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # contract's 1st


def series(
    rows: np.ndarray, last: np.ndarray, ts: np.ndarray, volume: np.ndarray,
    open_interest: np.ndarray, bid: np.ndarray, ask: np.ndarray, upper: np.ndarray,
    lower: np.ndarray, pre_settlement: np.ndarray, tick_size: np.ndarray,
    limit_rate: np.ndarray, params: StatsParams | None = None, take: np.ndarray | None = None,
) -> SeriesSignals:  # fmt: skip
    """Every slice's signals, as MarketStats.update would give them fed these ticks in order
    (`take`: the positions of the ticks to use in every column, default all; `rows` is a
    column too)."""
    p = params or StatsParams()
    take = np.arange(np.asarray(rows).shape[0]) if take is None else np.asarray(take)
    rows = np.asarray(rows, dtype=np.int64)[take]
    n = rows.shape[0]
    if n == 0:
        raise ValueError("market series: no ticks")
    ts_all = np.asarray(ts, dtype=float)
    secs = np.floor(ts_all[take])
    if not np.isfinite(secs).all():
        raise ValueError("market series: a tick without a finite time")
    secs = secs.astype(np.int64)
    if bool((secs[1:] < secs[:-1]).any()):
        raise ValueError("market series: data time goes back (fold step by step)")
    order = np.argsort(rows, kind="stable")  # by contract; each keeps its time order
    src = take[order]  # tick positions in the input columns, by contract then time
    r_t, s_t = rows[order], secs[order]
    ps = np.asarray(last, dtype=float)[src]
    brk = np.ones(n, dtype=bool)
    brk[1:] = (r_t[1:] != r_t[:-1]) | (s_t[1:] != s_t[:-1])
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], n) - 1
    g_row, g_sec = r_t[starts], s_t[starts]
    sizes = ends - starts + 1
    n_g = starts.shape[0]
    gi = np.arange(n_g)
    cfirst = np.ones(n_g, dtype=bool)
    cfirst[1:] = g_row[1:] != g_row[:-1]
    cstart = np.maximum.accumulate(np.where(cfirst, gi, 0))  # each group's contract's first
    tick = np.asarray(tick_size, dtype=float)[g_row]
    rate = np.asarray(limit_rate, dtype=float)[g_row]
    src_end = src[ends]
    end = {k: np.asarray(v, dtype=float)[src_end] for k, v in (
        ("ts", ts_all), ("bid", bid), ("ask", ask), ("upper", upper), ("lower", lower),
        ("pre", pre_settlement))}  # fmt: skip
    vol_t = np.asarray(volume, dtype=float)[src]
    oi_t = np.asarray(open_interest, dtype=float)[src]
    ts_last = end["ts"]
    last_g = ps[ends]
    prev_last = _before(last_g, cfirst, np.nan)  # the contract's price before the slice

    # Returns, volume and OI changes per tick; the slice's five sums per group.
    tfirst = np.zeros(n, dtype=bool)
    tfirst[starts[cfirst]] = True
    prev = np.empty(n)
    prev[1:] = ps[:-1]
    prev[tfirst] = np.nan
    r, ok = log_returns(ps, prev)
    dvol = deltas(vol_t, _carried(vol_t[ends], cstart, gi, True), starts, True)
    doi = deltas(oi_t, _carried(oi_t[ends], cstart, gi, True), starts, False)
    sums = np.stack([np.add.reduceat(r, starts), np.add.reduceat(r * r, starts),
                     np.add.reduceat(ok, starts, dtype=np.int64).astype(float),
                     np.add.reduceat(dvol, starts), np.add.reduceat(doi, starts)], axis=1)  # fmt: skip

    useconds = np.unique(secs)  # the global data clock: one advance per distinct second
    g_k = np.searchsorted(useconds, g_sec)
    before, after = {}, {}
    for w in p.vol_windows_s:
        cols = {1}
        cols |= {1, 2} if w == p.jump_baseline_s else set()
        cols |= {3, 4} if w == p.spike_window_s else set()
        cols |= {3, 5} if w == p.spike_baseline_s else set()
        before[w], after[w] = _window_totals(w // p.buckets, p.buckets, useconds, g_row, g_sec,
                                             g_k, sums, cfirst, tuple(sorted(cols)),
                                             w == p.jump_baseline_s)  # fmt: skip

    # Jumps: every tick's move over N seconds against sigma·sqrt(N) of the baseline before.
    first = np.where(cfirst, -1, g_sec[cstart])
    covered = np.clip(g_sec - first + 1, 1, None).astype(float)
    base = before[p.jump_baseline_s]
    var_per_s = base[1] / np.minimum(covered, p.jump_baseline_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        one_tick = tick / np.abs(prev_last)
        sigma_n = np.fmax(np.sqrt(var_per_s * p.jump_window_s), one_tick)
    sigma_n[(base[2] < p.jump_min_returns) | (first < 0)] = np.nan
    ref_ok = (first >= 0) & (g_sec - p.jump_window_s > first)
    ref = np.where(ref_ok, _price_before(g_row, g_sec, g_sec - p.jump_window_s, last_g, cstart),
                   np.nan)  # fmt: skip
    move = relative_moves(ps, np.repeat(ref, sizes))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(move) / np.repeat(sigma_n, sizes)
        z[~(np.abs(move) >= p.jump_min_move) | ~np.isfinite(move)] = 0.0
    z = np.nan_to_num(z, nan=0.0, posinf=1e9)

    # Limits: the ticks' own limit prices, else previous settlement × (1 ± limit rate).
    up, lo = _limits(end["upper"], end["lower"], end["pre"], rate, tick,
                     cstart, gi)  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.fmin(np.repeat(up, sizes) - ps, ps - np.repeat(lo, sizes)) / np.abs(ps)
    near = np.fmin.reduceat(dist, starts)
    eps = tick / 2
    side = np.where(last_g >= up - eps, 1, np.where(last_g <= lo + eps, -1, 0))
    ask_l, bid_l = end["ask"], end["bid"]
    with np.errstate(invalid="ignore"):
        book = ((side == 1) & (np.isnan(ask_l) | (bid_l >= up - eps))) | (
            (side == -1) & (np.isnan(bid_l) | (ask_l <= lo + eps))
        )
    newly = (side != 0) & (side != _before(side, cfirst, 0))
    since_at = np.maximum.accumulate(np.where(newly, gi, -1))
    since = np.where(since_at >= cstart, ts_last[np.maximum(since_at, 0)], np.nan)
    locked = (side != 0) & (book | (ts_last - since >= p.lock_s))

    # Non-positive prices: an episode starts at a slice touching ≤ 0 and lasts while every
    # slice after it has a tick below one tick size (the live hysteresis, as index arithmetic).
    lowest = np.minimum.reduceat(ps, starts)
    at_a = np.maximum.accumulate(np.where(lowest <= 0, gi, -1))
    at_not_b = np.maximum.accumulate(np.where(~(lowest < tick), gi, -1))
    state = (at_a >= cstart) & (at_not_b <= at_a)
    entered = (lowest <= 0) & ~_before(state, cfirst, False)
    count = np.cumsum(entered)
    episode = count - (count - entered)[cstart]  # entries of the contract so far

    covered_after = np.clip(g_sec - g_sec[cstart] + 1, 1, None).astype(float)
    rv = {w: np.sqrt(a[1] * TRADING_SECONDS_PER_YEAR / np.minimum(covered_after, w))
          for w, a in after.items()}  # fmt: skip
    windows: dict[int, Any] = {
        w: _Columns(after[w]) for w in (p.spike_window_s, p.spike_baseline_s)
    }
    vol_ratio, oi_ratio = spikes(p, windows, g_row, covered_after)
    return SeriesSignals(
        rows=g_row, sec=g_sec, ts=ts_last, last=last_g, jump_z=np.maximum.reduceat(z, starts),
        near_limit=near, limit_side=side.astype(np.int8), locked=locked, volume_ratio=vol_ratio,
        oi_ratio=oi_ratio, rv=rv, nonpositive=entered, nonpositive_episode=episode, first=cfirst,
    )  # fmt: skip


class _Columns:
    """Window totals kept as columns, read as rules.market_signals.spikes reads its (groups,
    6) arrays (`w[:, c]`), so the spike arithmetic is that function's, not a copy."""

    def __init__(self, totals: dict[int, np.ndarray]) -> None:
        self.totals = totals

    def __getitem__(self, key: tuple[slice, int]) -> np.ndarray:
        return self.totals[key[1]]


def _before(values: np.ndarray, cfirst: np.ndarray, initial: object) -> np.ndarray:
    """Per group, the value of the contract's previous group (`initial` at its first)."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[cfirst] = initial
    return out


def _carried(ends: np.ndarray, cstart: np.ndarray, gi: np.ndarray, strict: bool) -> np.ndarray:
    """The state a column carries into each group: the contract's latest finite slice-end
    value before it (`strict`) or up to and including it; NaN before any."""
    at = np.where(np.isfinite(ends), gi, -1)
    if strict:
        at = np.concatenate(([-1], at[:-1]))
    at = np.maximum.accumulate(at)
    return np.where(at >= cstart, ends[np.maximum(at, 0)], np.nan)


def _price_before(g_row: np.ndarray, g_sec: np.ndarray, when: np.ndarray, last_g: np.ndarray,
                  cstart: np.ndarray) -> np.ndarray:  # fmt: skip
    """The contract's last price over its slices of data seconds before `when` (NaN: none)."""
    lo = int(min(g_sec.min(), when.min()))
    key = g_row * (1 << 34) + (g_sec - lo)
    j = np.searchsorted(key, g_row * (1 << 34) + (when - lo), side="left") - 1
    return np.where(j >= cstart, last_g[np.maximum(j, 0)], np.nan)


def _limits(upper: np.ndarray, lower: np.ndarray, pre: np.ndarray, rate: np.ndarray,
            tick: np.ndarray, cstart: np.ndarray, gi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Limit prices after each slice: the latest finite ones of the ticks; while a contract has
    no upper limit yet, both are derived once from the previous settlement (the live fold
    derives them at the first such slice and keeps them until the ticks bring their own)."""
    up = _carried(upper, cstart, gi, False)
    lo = _carried(lower, cstart, gi, False)
    pre_c = _carried(pre, cstart, gi, False)
    need = np.isnan(up) & np.isfinite(pre_c)  # one stretch per contract: up stays finite after
    opens = need.copy()
    opens[1:] &= ~need[:-1] | (gi[1:] == cstart[1:])
    g0 = np.maximum.accumulate(np.where(opens, gi, -1))
    since = g0 >= cstart  # at or after the contract's derivation
    if since.any():
        src = np.flatnonzero(opens)
        d_up, d_lo = np.full(gi.shape[0], np.nan), np.full(gi.shape[0], np.nan)
        d_up[src], d_lo[src] = limit_prices(pre_c[src], rate[src], tick[src])
        at = np.maximum(g0, 0)
        up = np.where(need, d_up[at], up)
        lo_at = np.maximum.accumulate(np.where(np.isfinite(lower), gi, -1))
        lo = np.where(since & ~(lo_at > g0), d_lo[at], lo)  # no finite lower since: derived
    return up, lo


def _window_totals(gran: int, b: int, useconds: np.ndarray, g_row: np.ndarray,
                   g_sec: np.ndarray, g_k: np.ndarray, sums: np.ndarray, cfirst: np.ndarray,
                   cols: tuple[int, ...], with_prior: bool) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:  # fmt: skip
    """A window's running totals (0 r, 1 r², 2 count, 3 volume, 4 OI change, 5 Σ|bucket OI
    change|; only `cols`) just before (`with_prior`) and just after each group's slice is
    added, as MarketStats keeps them."""
    n_g = g_row.shape[0]
    g_ep = g_sec // gran
    bfirst = cfirst.copy()
    bfirst[1:] |= g_ep[1:] != g_ep[:-1]
    bstart = np.maximum.accumulate(np.where(bfirst, np.arange(n_g), 0))
    # The bucket's sums after each of its slices (0.0 + first, then one addition each).
    src = sorted({4 if c == 5 else c for c in cols})
    bucket = 0.0 + sums[:, src]
    pos = np.arange(n_g) - bstart
    by_pos = np.argsort(pos, kind="stable")
    offsets = np.cumsum(np.bincount(pos))
    for j in range(1, offsets.shape[0]):  # the j-th slice of every bucket at once
        at = by_pos[offsets[j - 1] : offsets[j]]
        bucket[at] = bucket[at - 1] + sums[at][:, src]
    add_cols = []
    for c in cols:
        if c == 5:
            b4 = bucket[:, src.index(4)]
            prior4 = np.where(bfirst, 0.0, np.concatenate(([0.0], b4[:-1])))
            add_cols.append(np.abs(b4) - np.abs(prior4))
        else:
            add_cols.append(sums[:, c])
    add = np.column_stack(add_cols)
    # The clock: its epoch at each advance; a jump of a whole window empties it.
    epochs = useconds // gran
    reset = np.zeros(epochs.shape[0], dtype=bool)
    reset[1:] = epochs[1:] - epochs[:-1] >= b
    segment = np.cumsum(reset)
    # Each bucket leaves at the first advance whose epoch reaches its epoch + b (unless that
    # advance empties the window).
    blast = np.append(np.flatnonzero(bfirst)[1:], n_g) - 1
    k_out = np.searchsorted(epochs, g_ep[blast] + b, side="left")
    leaves = k_out < epochs.shape[0]
    leaves[leaves] = ~reset[k_out[leaves]]
    blast, k_out = blast[leaves], k_out[leaves]
    final = bucket[blast]
    sub = -np.column_stack([np.abs(final[:, src.index(4)]) if c == 5 else final[:, src.index(c)]
                            for c in cols])  # fmt: skip
    # One stream per contract: removals at an advance come before the slice added at it.
    # Both lists are sorted by (contract, advance) already: merge them by position.
    n_sub = blast.shape[0]
    key_add = g_row * (1 << 36) + g_k
    key_sub = g_row[blast] * (1 << 36) + k_out
    place_add = np.arange(n_g) + np.searchsorted(key_sub, key_add, side="right")
    place_sub = np.arange(n_sub) + np.searchsorted(key_add, key_sub, side="left")
    m = n_g + n_sub
    vals = np.empty((m, len(cols)))
    vals[place_add], vals[place_sub] = add, sub
    ev_row = np.empty(m, dtype=np.int64)
    ev_row[place_add], ev_row[place_sub] = g_row, g_row[blast]
    ev_k = np.empty(m, dtype=np.int64)
    ev_k[place_add], ev_k[place_sub] = g_k, k_out
    seg = segment[ev_k]
    cut = np.ones(m, dtype=bool)
    cut[1:] = (ev_row[1:] != ev_row[:-1]) | (seg[1:] != seg[:-1])
    bounds = np.append(np.flatnonzero(cut), m)
    vals[bounds[:-1]] += 0.0  # an emptied window is 0.0, and 0.0 + x is what the fold computes
    total = np.empty_like(vals)
    for a, z in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        np.add.accumulate(vals[a:z], axis=0, out=total[a:z])
    after = {c: total[place_add, i] for i, c in enumerate(cols)}
    if not with_prior:
        return {}, after
    first = cut[place_add]
    back = np.maximum(place_add - 1, 0)
    prior = {c: np.where(first, 0.0, total[back, i]) for i, c in enumerate(cols)}
    return prior, after
