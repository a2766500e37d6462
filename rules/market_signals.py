"""What the market statistics report, and how they treat prices at or below zero.

Split from rules.market_stats (which folds ticks into state) so the parameters, the per-slice
signals and the return arithmetic that every statistic shares are readable on their own.

A log return ln(p / q) is defined only for two positive prices. Any finite price is a price
(WTI settled at −37.63 on 2020-04-20), so each statistic says what it does across zero:
`log_returns` leaves a return out (it is not counted, so volatility is over the returns that
exist); `relative_moves` (jumps) falls back to the simple move (p − q) / |q| whenever either
price is ≤ 0, and is undefined (NaN, no jump) when q is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rules.model import RiskEvent

NONPOSITIVE_RULE = "market.nonpositive_price"


def log_returns(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ln(p / q) where both are positive and finite, else 0; the mask of returns that exist)."""
    ok = (p > 0) & (q > 0) & np.isfinite(p) & np.isfinite(q)
    r = np.ones(p.shape[0])
    np.divide(p, q, out=r, where=ok)
    return np.log(r, out=np.zeros(p.shape[0]), where=ok), ok


def relative_moves(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Log move p against q; the simple move (p − q) / |q| when either is ≤ 0; NaN at q = 0
    or when q is unknown (NaN)."""
    out = np.full(p.shape[0], np.nan)
    pos = (p > 0) & (q > 0)
    ratio = np.divide(p, q, out=np.ones(p.shape[0]), where=pos)
    np.log(ratio, out=out, where=pos)
    other = ~pos & (q != 0) & np.isfinite(q) & np.isfinite(p)
    np.divide(p - q, np.abs(q), out=out, where=other)
    return out


def nonpositive_events(
    signals: list[SliceSignals], names: list[str], products: list[str], ingress: float | None,
    owned: np.ndarray | None = None, severity: str = "warning",
) -> list[RiskEvent]:  # fmt: skip
    """A `market.nonpositive_price` event per contract entering a price ≤ 0 (one per episode);
    `ingress` None: the data time (a replay)."""
    out: list[RiskEvent] = []
    for sig in signals:
        for j in np.flatnonzero(sig.nonpositive).tolist():
            row = int(sig.rows[j])
            if owned is not None and not owned[row]:
                continue
            price = float(sig.last[j])
            out.append(RiskEvent(
                rule_id=NONPOSITIVE_RULE, kind=NONPOSITIVE_RULE, key=names[row],
                severity=severity, value=price, threshold=0.0, ts=float(sig.ts[j]),
                ingress_ts=float(sig.ts[j]) if ingress is None else ingress, episode=int(sig.nonpositive_episode[j]), dimension="market",
                attributes={"product": products[row], "price": price},
            ))  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class StatsParams:
    """What the statistics look at. Windows in whole seconds, each a multiple of `buckets`."""

    vol_windows_s: tuple[int, ...] = (60, 300, 1800)
    buckets: int = 30
    bar_s: int = 60
    bar_history: int = 240
    jump_window_s: int = 5  # a jump is a move over this many seconds ...
    jump_baseline_s: int = 300  # ... measured against the volatility of this window
    jump_min_move: float = 0.003  # and at least this large (log move), so a quiet market's
    jump_min_returns: int = 20  # one-tick moves are not jumps; baseline needs this many returns
    spike_window_s: int = 60  # volume / OI over this window ...
    spike_baseline_s: int = 1800  # ... against the rate over this one
    spike_min_history_s: int = 300  # the baseline needs this much history before spikes count
    lock_s: float = 3.0  # at the limit this long counts as locked when the book does not show it

    def __post_init__(self) -> None:
        if self.buckets < 2:
            raise ValueError("buckets must be at least 2")
        if not self.vol_windows_s:
            raise ValueError("vol_windows_s needs at least one window")
        for w in self.vol_windows_s:
            if w < self.buckets or w % self.buckets:
                raise ValueError(
                    f"window {w}s must be a positive multiple of buckets ({self.buckets})"
                )
        for name in ("jump_baseline_s", "spike_window_s", "spike_baseline_s"):
            if getattr(self, name) not in self.vol_windows_s:
                raise ValueError(f"{name}={getattr(self, name)} must be one of vol_windows_s")
        if self.spike_window_s >= self.spike_baseline_s:
            raise ValueError("spike_window_s must be shorter than spike_baseline_s")
        if self.bar_s < 1 or self.jump_window_s < 1 or self.bar_history < 1:
            raise ValueError("bar_s, jump_window_s and bar_history must be at least 1")


@dataclass(slots=True)
class SliceSignals:
    """What one slice (≤ 1 s of data) did to the contracts that ticked in it, one value per row.

    Extremes are over every tick of the slice: `jump_z` is the largest, `near_limit` the
    smallest value any tick reached, not just the last tick's.
    """

    rows: np.ndarray
    second: int
    ts: np.ndarray  # exchange time of each row's last tick
    last: np.ndarray
    jump_z: np.ndarray  # |move over N s| / its expected size; 0 below the minimum move
    jump_move: np.ndarray  # the log move with the largest magnitude
    near_limit: np.ndarray  # min distance to a limit, fraction of price; nan without limits
    limit_side: np.ndarray  # +1 at the upper limit, -1 at the lower, 0 free (last tick)
    locked: np.ndarray  # bool
    volume_ratio: np.ndarray  # volume of the spike window / expected from the baseline rate
    oi_ratio: np.ndarray
    rv: dict[int, np.ndarray] = field(default_factory=dict)  # annualized realized vol by window
    # rows whose contract entered a price ≤ 0 in this slice (once per episode), and the episode
    nonpositive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    nonpositive_episode: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def deltas(
    values: np.ndarray, before: np.ndarray, starts: np.ndarray, reset_on_drop: bool
) -> np.ndarray:
    """Tick-to-tick change of a cumulative column (volume restarts at a new trading day)."""
    prev = np.empty_like(values)
    prev[1:] = values[:-1]
    prev[starts] = before
    d = values - prev
    if reset_on_drop:
        d = np.where(d < 0, values, d)
    return np.nan_to_num(d, nan=0.0)


def spikes(
    p: StatsParams, windows: dict[int, np.ndarray], u: np.ndarray, covered: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    short, long_ = windows[p.spike_window_s], windows[p.spike_baseline_s]
    history = np.minimum(covered, p.spike_baseline_s) - p.spike_window_s
    enough = history >= p.spike_min_history_s
    history = np.maximum(history, 1.0)
    expected_vol = np.maximum((long_[:, 3] - short[:, 3]) / history * p.spike_window_s, 1.0)
    vol_ratio = np.where(enough, short[:, 3] / expected_vol, 0.0)
    # OI: the absolute net change of the short window against the mean absolute net change
    # per bucket of the long window, scaled to the short window.
    abs_long = long_[:, 5]
    oi_short = np.abs(short[:, 4])
    expected_oi = np.maximum((abs_long - oi_short) / history * p.spike_window_s, 1.0)
    oi_ratio = np.where(enough, oi_short / expected_oi, 0.0)
    return vol_ratio, oi_ratio
