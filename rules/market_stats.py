"""Per-contract market statistics folded from every tick, vectorized over columnar batches.

A feed keeps, per contract: last price, OHLC bars, rolling realized volatility over several
windows, the move over the last N seconds against its expected size (price jumps), distance to
the daily limits and the limit-locked state, and traded-volume / open-interest spikes. Every
tick contributes — a spike that reverts inside one batch still shows — but no statistic loops
over ticks in Python: a batch is cut into one-second slices (one slice for a live 50 ms batch)
and each slice is a fixed number of numpy calls (a stable radix sort by contract, then
`ufunc.reduceat` per contract and fancy-indexed updates of unique contracts).

Rolling windows are rings of `buckets` time buckets per contract (sum of log returns, of their
squares, return count, traded volume, open-interest change). A window of W seconds therefore
covers between W − W/buckets and W seconds of data; that granularity (2 s for one minute with
30 buckets) is what makes a window an O(buckets) sum instead of a scan of every return.

Realized volatility is annualized over the window's length in seconds (trading time: 250 days
of 4 hours), so a window that spans the lunch break or the night understates it. Any finite price is a price, zero and negative included (WTI settled at −37.63 on 2020-04-20):
returns touching a price ≤ 0 leave the volatility windows, jumps fall back to the simple move,
limit distances are fractions of |price| (rules.market_signals says exactly how). A contract
entering a price ≤ 0 raises `nonpositive` once per episode; the episode ends when a whole slice
trades at least a tick above zero (hysteresis). Time is the data's own (the exchange time of
the ticks): a replay computes the same figures as the live run. Pure: numpy and stdlib only.
"""

from __future__ import annotations

import numpy as np

from rules.contracts import limit_prices
from rules.market_signals import (
    SliceSignals,
    StatsParams,
    deltas,
    log_returns,
    relative_moves,
    spikes,
)

TRADING_SECONDS_PER_YEAR = 250 * 4 * 3600  # annualization on trading time, as the simulator
_NEVER = -(1 << 40)  # bucket epoch of a bucket never written
_FILL: dict[str, float | int | bool] = {
    "tick": 1.0, "first_sec": -1, "ticks": 0, "limit_side": 0, "locked": False,
    "bar_epoch": -1, "bar_count": 0, "nonpositive": False, "nonpositive_episode": 0,
}  # fmt: skip


class MarketStats:
    """Columnar per-contract state. Rows are added with `add_rows` and never removed."""

    _PER_ROW = (
        "last", "cum_volume", "open_interest", "upper", "lower", "pre_settlement", "tick",
        "limit_rate", "first_sec", "last_ts", "ticks", "limit_side", "limit_since", "locked",
        "bar_epoch", "bar", "bar_count", "history", "ref", "nonpositive", "nonpositive_episode",
    )  # fmt: skip

    def __init__(self, params: StatsParams | None = None, capacity: int = 256) -> None:
        self.p = params or StatsParams()
        self.n = 0
        self.clock = -1  # data second of the latest slice
        self.slices = 0
        self._ring = self.p.jump_window_s + 2
        self._gran = {w: w // self.p.buckets for w in self.p.vol_windows_s}
        cap = max(capacity, 1)
        self.last = np.full(cap, np.nan)
        self.cum_volume = np.full(cap, np.nan)
        self.open_interest = np.full(cap, np.nan)
        self.upper = np.full(cap, np.nan)
        self.lower = np.full(cap, np.nan)
        self.pre_settlement = np.full(cap, np.nan)
        self.tick = np.ones(cap)
        self.limit_rate = np.full(cap, np.nan)
        self.first_sec = np.full(cap, -1, dtype=np.int64)
        self.last_ts = np.full(cap, np.nan)
        self.ticks = np.zeros(cap, dtype=np.int64)
        self.limit_side = np.zeros(cap, dtype=np.int8)
        self.limit_since = np.full(cap, np.nan)
        self.locked = np.zeros(cap, dtype=bool)
        self.nonpositive = np.zeros(cap, dtype=bool)  # in a non-positive price episode
        self.nonpositive_episode = np.zeros(cap, dtype=np.int64)
        self.bar_epoch = np.full(cap, -1, dtype=np.int64)
        self.bar = np.full((cap, 5), np.nan)  # open, high, low, close, volume of the open bar
        self.bar_count = np.zeros(cap, dtype=np.int64)
        self.history = np.full((cap, self.p.bar_history, 6), np.nan)  # start, o, h, l, c, v
        self.ref = np.full((cap, self._ring), np.nan)  # price at the start of each second
        b = self.p.buckets
        # Per window: bucket epochs and the sums (r, r², count, volume, OI change) per bucket,
        # and running totals over the live buckets (the five sums and Σ|bucket OI change|).
        self.epochs = {w: np.full((cap, b), _NEVER, dtype=np.int64) for w in self._gran}
        self.sums = {w: np.zeros((cap, b, 5)) for w in self._gran}
        self.totals = {w: np.zeros((cap, 6)) for w in self._gran}
        self._epoch: dict[int, int] = {}  # the bucket epoch each window has expired up to

    # -- rows --------------------------------------------------------------------------------
    def add_rows(self, tick_size: np.ndarray, limit_rate: np.ndarray) -> np.ndarray:
        """Register contracts (their tick size and limit rate); returns their rows."""
        tick_size = np.atleast_1d(np.asarray(tick_size, dtype=float))
        k = tick_size.shape[0]
        if self.n + k > self.last.shape[0]:
            self._grow(max(2 * self.last.shape[0], self.n + k))
        rows = np.arange(self.n, self.n + k)
        self.tick[rows] = tick_size
        self.limit_rate[rows] = np.atleast_1d(np.asarray(limit_rate, dtype=float))
        self.n += k
        return rows

    def _grow(self, cap: int) -> None:
        def grown(arr: np.ndarray, fill: float | int | bool) -> np.ndarray:
            new = np.full((cap, *arr.shape[1:]), fill, dtype=arr.dtype)
            new[: arr.shape[0]] = arr
            return new

        for name in self._PER_ROW:
            setattr(self, name, grown(getattr(self, name), _FILL.get(name, np.nan)))
        self.epochs = {w: grown(a, _NEVER) for w, a in self.epochs.items()}
        self.sums = {w: grown(a, 0.0) for w, a in self.sums.items()}
        self.totals = {w: grown(a, 0.0) for w, a in self.totals.items()}

    # -- folding ticks -----------------------------------------------------------------------
    def update(
        self,
        rows: np.ndarray,
        last: np.ndarray,
        ts: np.ndarray,
        volume: np.ndarray | None = None,
        open_interest: np.ndarray | None = None,
        bid: np.ndarray | None = None,
        ask: np.ndarray | None = None,
        upper: np.ndarray | None = None,
        lower: np.ndarray | None = None,
        pre_settlement: np.ndarray | None = None,
    ) -> list[SliceSignals]:
        """Fold ticks (in arrival order) into the state; one SliceSignals per data second."""
        n = rows.shape[0]
        if n == 0:
            return []
        nan = np.full(n, np.nan)
        cols = [
            np.asarray(c, dtype=float) if c is not None else nan
            for c in (last, ts, volume, open_interest, bid, ask, upper, lower, pre_settlement)
        ]
        rows = np.asarray(rows, dtype=np.int64)
        secs = np.floor(cols[1]).astype(np.int64)
        if self.clock >= 0:
            np.maximum(secs, self.clock, out=secs)  # a late tick counts in the current second
        if n > 1 and bool((secs[1:] < secs[:-1]).any()):
            order = np.argsort(secs, kind="stable")
            rows, secs, cols = rows[order], secs[order], [c[order] for c in cols]
        cuts = np.flatnonzero(secs[1:] != secs[:-1]) + 1
        bounds = [0, *cuts.tolist(), n]
        out = []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            out.append(self._slice(int(secs[a]), rows[a:b], *(c[a:b] for c in cols)))
        return out

    def _advance(self, sec: int) -> None:
        """Move the data clock to `sec`, recording each contract's price at each new second."""
        n = self.n
        if self.clock < 0 or sec - self.clock >= self._ring:
            self.ref[:n] = self.last[:n, None]
        else:
            for x in range(self.clock + 1, sec + 1):
                self.ref[:n, x % self._ring] = self.last[:n]
        self.clock = max(self.clock, sec)
        for w, gran in self._gran.items():
            self._expire(w, sec // gran)

    def _expire(self, w: int, epoch: int) -> None:
        """Take the buckets that fall out of window `w` at `epoch` out of its totals, for every
        contract at once: O(contracts) per bucket boundary instead of O(buckets) per slice."""
        b, n = self.p.buckets, self.n
        last = self._epoch.get(w)
        self._epoch[w] = epoch
        if last is None or epoch <= last:
            return
        if epoch - last >= b:  # a gap longer than the window: everything leaves it
            self.sums[w][:n] = 0.0
            self.totals[w][:n] = 0.0
            self.epochs[w][:n] = _NEVER
            return
        for gone in range(last - b + 1, epoch - b + 1):
            slot = gone % b
            rows = np.flatnonzero(self.epochs[w][:n, slot] == gone)
            if rows.size:
                old = self.sums[w][rows, slot]
                self.totals[w][rows, :5] -= old
                self.totals[w][rows, 5] -= np.abs(old[:, 4])
                self.sums[w][rows, slot] = 0.0
                self.epochs[w][rows, slot] = _NEVER

    def _slice(
        self,
        sec: int,
        rows: np.ndarray,
        last: np.ndarray,
        ts: np.ndarray,
        volume: np.ndarray,
        oi: np.ndarray,
        bid: np.ndarray,
        ask: np.ndarray,
        upper: np.ndarray,
        lower: np.ndarray,
        pre: np.ndarray,
    ) -> SliceSignals:
        p = self.p
        if sec > self.clock:
            self._advance(sec)
        self.slices += 1
        key = rows.astype(np.uint16) if self.n < 65536 else rows
        order = np.argsort(key, kind="stable")  # radix sort on 16-bit keys: O(n)
        rs, ps = rows[order], last[order]
        starts = np.concatenate(([0], np.flatnonzero(rs[1:] != rs[:-1]) + 1))
        ends = np.concatenate((starts[1:], [rs.shape[0]])) - 1
        u = rs[starts]
        sizes = ends - starts + 1
        ts_last = ts[order][ends]

        # Tick-to-tick log returns; the first tick of a contract continues from its last price.
        prev = np.empty_like(ps)
        prev[1:] = ps[:-1]
        prev[starts] = self.last[u]
        r, ok = log_returns(ps, prev)  # a price ≤ 0 on either side: no return
        dvol = deltas(volume[order], self.cum_volume[u], starts, reset_on_drop=True)
        doi = deltas(oi[order], self.open_interest[u], starts, reset_on_drop=False)
        sums = np.stack(
            [
                np.add.reduceat(r, starts),
                np.add.reduceat(r * r, starts),
                np.add.reduceat(ok, starts, dtype=np.int64).astype(float),
                np.add.reduceat(dvol, starts),
                np.add.reduceat(doi, starts),
            ],
            axis=1,
        )

        # Jumps: every tick's move over N seconds against sigma·sqrt(N) of the baseline window
        # as it stood before this slice.
        first = self.first_sec[u]
        covered = np.clip(sec - first + 1, 1, None).astype(float)
        base = self._window(p.jump_baseline_s, u)
        var_per_s = base[:, 1] / np.minimum(covered, p.jump_baseline_s)
        # Never below one tick (of |price|; at 0 infinite): a flat market's first move is large.
        with np.errstate(divide="ignore"):
            one_tick = self.tick[u] / np.abs(self.last[u])
        sigma_n = np.fmax(np.sqrt(var_per_s * p.jump_window_s), one_tick)
        sigma_n[(base[:, 2] < p.jump_min_returns) | (first < 0)] = np.nan
        ref_ok = (first >= 0) & (sec - p.jump_window_s > first)
        ref_u = np.where(ref_ok, self.ref[u, (sec - p.jump_window_s) % self._ring], np.nan)
        move = relative_moves(ps, np.repeat(ref_u, sizes))  # log, or simple across ≤ 0
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(move) / np.repeat(sigma_n, sizes)
        z[~(np.abs(move) >= p.jump_min_move) | ~np.isfinite(move)] = 0.0
        z = np.nan_to_num(z, nan=0.0, posinf=1e9)
        mv = np.nan_to_num(move, nan=0.0)
        hi, lo = np.maximum.reduceat(mv, starts), np.minimum.reduceat(mv, starts)
        jump_move = np.where(np.abs(lo) > np.abs(hi), lo, hi)

        # Add the slice to the current bucket of each window (expired buckets were emptied by
        # _expire, so the slot of this epoch is either this epoch's or empty).
        for w, gran in self._gran.items():
            slot = (sec // gran) % p.buckets
            self.epochs[w][u, slot] = sec // gran
            before = np.abs(self.sums[w][u, slot, 4])
            self.sums[w][u, slot] += sums
            self.totals[w][u, :5] += sums
            self.totals[w][u, 5] += np.abs(self.sums[w][u, slot, 4]) - before

        # Limits: the ticks' own limit prices, else previous settlement × (1 ± limit rate).
        for src, dst in ((upper, self.upper), (lower, self.lower), (pre, self.pre_settlement)):
            val = src[order][ends]
            fin = np.isfinite(val)
            dst[u[fin]] = val[fin]
        need = u[np.isnan(self.upper[u]) & np.isfinite(self.pre_settlement[u])]
        if need.size:
            self.upper[need], self.lower[need] = limit_prices(
                self.pre_settlement[need], self.limit_rate[need], self.tick[need]
            )
        up_u, lo_u = self.upper[u], self.lower[u]
        with np.errstate(invalid="ignore"):
            dist = np.fmin(np.repeat(up_u, sizes) - ps, ps - np.repeat(lo_u, sizes)) / np.abs(ps)
        near = np.fmin.reduceat(dist, starts)
        last_u = ps[ends]
        eps = self.tick[u] / 2
        side = np.where(last_u >= up_u - eps, 1, np.where(last_u <= lo_u + eps, -1, 0))
        ask_l, bid_l = ask[order][ends], bid[order][ends]
        with np.errstate(invalid="ignore"):
            book = ((side == 1) & (np.isnan(ask_l) | (bid_l >= up_u - eps))) | (
                (side == -1) & (np.isnan(bid_l) | (ask_l <= lo_u + eps))
            )
        newly = (side != 0) & (side != self.limit_side[u])
        self.limit_since[u[newly]] = ts_last[newly]
        self.limit_side[u] = side
        locked = (side != 0) & (book | (ts_last - self.limit_since[u] >= p.lock_s))
        self.locked[u] = locked

        self._bars(u, sec, ps, starts, ends, sums[:, 3])

        # Non-positive prices: once per episode; it ends when a whole slice trades at least a
        # tick above zero (hysteresis: prices hovering at zero are one episode).
        lowest = np.minimum.reduceat(ps, starts)
        entered = (lowest <= 0) & ~self.nonpositive[u]
        self.nonpositive_episode[u[entered]] += 1
        self.nonpositive[u] = (lowest <= 0) | (self.nonpositive[u] & (lowest < self.tick[u]))

        # State after the slice.
        self.last[u] = last_u
        for src, dst in ((volume, self.cum_volume), (oi, self.open_interest)):
            val = src[order][ends]
            fin = np.isfinite(val)
            dst[u[fin]] = val[fin]
        self.last_ts[u] = ts_last
        self.ticks[u] += sizes
        self.first_sec[u[first < 0]] = sec

        windows = {w: self._window(w, u) for w in self._gran}
        covered = np.clip(sec - self.first_sec[u] + 1, 1, None).astype(float)
        rv = {
            w: np.sqrt(s[:, 1] * TRADING_SECONDS_PER_YEAR / np.minimum(covered, w))
            for w, s in windows.items()
        }
        vol_ratio, oi_ratio = spikes(self.p, windows, u, covered)
        return SliceSignals(
            rows=u,
            second=sec,
            ts=ts_last,
            last=last_u,
            jump_z=np.maximum.reduceat(z, starts),
            jump_move=jump_move,
            near_limit=near,
            limit_side=side.astype(np.int8),
            locked=locked,
            volume_ratio=vol_ratio,
            oi_ratio=oi_ratio,
            rv=rv,
            nonpositive=entered,
            nonpositive_episode=self.nonpositive_episode[u].copy(),
        )

    def _window(self, w: int, u: np.ndarray) -> np.ndarray:
        """(r, r², count, volume, OI change, Σ|bucket OI change|) over window `w` for rows `u`,
        as of the data clock."""
        return self.totals[w][u]

    def _bars(
        self,
        u: np.ndarray,
        sec: int,
        ps: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        dvol: np.ndarray,
    ) -> None:
        epoch = sec // self.p.bar_s
        hi, lo = np.maximum.reduceat(ps, starts), np.minimum.reduceat(ps, starts)
        roll = self.bar_epoch[u] != epoch
        done = u[roll & (self.bar_epoch[u] >= 0)]
        if done.size:
            slot = self.bar_count[done] % self.p.bar_history
            start = (self.bar_epoch[done] * self.p.bar_s).astype(float)
            self.history[done, slot] = np.column_stack([start, self.bar[done]])
            self.bar_count[done] += 1
        new = u[roll]
        self.bar[new] = np.column_stack(
            [ps[starts][roll], hi[roll], lo[roll], ps[ends][roll], dvol[roll]]
        )
        self.bar_epoch[new] = epoch
        cont = ~roll
        old = u[cont]
        if old.size:
            bar = self.bar[old]
            bar[:, 1] = np.fmax(bar[:, 1], hi[cont])
            bar[:, 2] = np.fmin(bar[:, 2], lo[cont])
            bar[:, 3] = ps[ends][cont]
            bar[:, 4] += dvol[cont]
            self.bar[old] = bar

    # -- queries -----------------------------------------------------------------------------
    def bars(self, row: int, limit: int = 60) -> list[dict[str, float]]:
        """Completed bars of a contract, oldest first, then the open bar."""
        h = self.p.bar_history
        count = int(self.bar_count[row])
        take = min(count, h, limit)
        out = []
        for k in range(count - take, count):
            start, o, hi, lo, c, v = self.history[row, k % h].tolist()
            out.append({"start": start, "open": o, "high": hi, "low": lo, "close": c, "volume": v})
        if self.bar_epoch[row] >= 0:
            o, hi, lo, c, v = self.bar[row].tolist()
            start = float(self.bar_epoch[row] * self.p.bar_s)
            out.append({"start": start, "open": o, "high": hi, "low": lo, "close": c, "volume": v})
        return out

    def realized_vol(self, rows: np.ndarray) -> dict[int, np.ndarray]:
        """Annualized realized volatility per window for `rows`, at the current data clock."""
        rows = np.asarray(rows, dtype=np.int64)
        covered = np.clip(self.clock - self.first_sec[rows] + 1, 1, None).astype(float)
        out = {}
        for w in self._gran:
            s = self._window(w, rows)
            out[w] = np.sqrt(s[:, 1] * TRADING_SECONDS_PER_YEAR / np.minimum(covered, w))
        return out
