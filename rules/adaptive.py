"""Baselines that learn: thresholds from each contract's and each account's own history.

A fixed "price moved 2%" fires all day on a volatile contract and never on a quiet one; a fixed
"withdrawal above 5M" never fires for a small account's unusual 300k. Each baseline here keeps a
small recoverable state and answers, for new observations, a *score* (how unusual, in units of the
key's own spread) together with the *baseline* it was judged against, so an alert can say both.

- `VolatilityBaseline`: per contract, an exponentially weighted variance of log returns per bar;
  a move over a window scores |log move| / (σ_bar × √bars). Non-positive prices have no log
  return: a window that starts or ends at a price ≤ 0 is not scored (NaN) and does not update σ.
- `FlowBaseline`: per account and weekday (pay-days and month-ends differ from Tuesdays), the
  last `depth` log amounts; a transfer scores (log amount − median) / (1.4826 × MAD), the robust
  z-score (a single huge outlier in the history does not mask the next one).
- `RateBaseline`: per account, an exponentially weighted mean and variance of a count per window
  (orders, cancels); a window scores (count − mean) / √max(variance, mean, 1) — counts are at
  least Poisson-noisy, so a quiet account's first two orders are not an anomaly.

All pure (numpy, stdlib); `state()` / `from_state()` give plain data for the actor's snapshot.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAD_SCALE = 1.4826  # MAD × 1.4826 estimates σ for normal data


@dataclass(slots=True)
class VolatilityBaseline:
    """EW variance of per-bar log returns per contract (row-aligned arrays)."""

    halflife_bars: float = 240.0  # about a trading day of one-minute bars
    min_bars: int = 30
    variance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bars: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def _grow(self, n: int) -> None:
        if self.variance.size < n:
            k = n - self.variance.size
            self.variance = np.concatenate([self.variance, np.zeros(k)])
            self.bars = np.concatenate([self.bars, np.zeros(k, dtype=np.int64)])
            self.last = np.concatenate([self.last, np.full(k, np.nan)])

    def update(self, rows: np.ndarray, close: np.ndarray) -> None:
        """A bar closed for `rows` at `close`: fold its log return into σ (vectorized)."""
        self._grow(int(rows.max(initial=-1)) + 1)
        prev = self.last[rows]
        ok = (prev > 0) & (close > 0) & np.isfinite(prev) & np.isfinite(close)
        r = np.zeros(rows.size)
        r[ok] = np.log(close[ok] / prev[ok])
        alpha = 1.0 - 0.5 ** (1.0 / self.halflife_bars)
        upd = rows[ok]
        self.variance[upd] = (1 - alpha) * self.variance[upd] + alpha * r[ok] ** 2
        self.bars[upd] += 1
        self.last[rows] = close

    def sigma(self, rows: np.ndarray) -> np.ndarray:
        """σ per bar, NaN until `min_bars` bars are seen (no baseline, no score)."""
        self._grow(int(rows.max(initial=-1)) + 1)
        s = np.sqrt(self.variance[rows])
        return np.where(self.bars[rows] >= self.min_bars, s, np.nan)

    def score(self, rows: np.ndarray, start: np.ndarray, end: np.ndarray,
              window_bars: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(score, σ over the window) of moves from `start` to `end` prices."""
        sigma = self.sigma(rows) * math.sqrt(max(window_bars, 1.0))
        ok = (start > 0) & (end > 0)
        move = np.full(rows.size, np.nan)
        move[ok] = np.abs(np.log(end[ok] / start[ok]))
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(sigma > 0, move / sigma, np.nan)
        return score, sigma

    def state(self) -> dict[str, Any]:
        return {"variance": self.variance.tolist(), "bars": self.bars.tolist(),
                "last": self.last.tolist(), "halflife_bars": self.halflife_bars,
                "min_bars": self.min_bars}  # fmt: skip

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> VolatilityBaseline:
        return cls(float(s["halflife_bars"]), int(s["min_bars"]), np.asarray(s["variance"], float),
                   np.asarray(s["bars"], np.int64), np.asarray(s["last"], float))  # fmt: skip


@dataclass(slots=True)
class FlowScore:
    score: float  # robust z; NaN when the baseline is too thin
    median: float  # the baseline amount (yuan) the transfer was judged against
    spread: float  # 1.4826 × MAD in log units
    history: int  # how many past transfers on that weekday the baseline has


@dataclass(slots=True)
class FlowBaseline:
    """Per account and weekday, the last `depth` log amounts of one direction of transfers."""

    depth: int = 12
    min_history: int = 4
    min_spread: float = 0.25  # log units: a key that always moves the same amount is not 0-spread
    history: dict[tuple[str, int], deque] = field(default_factory=dict)

    def score(self, account: str, weekday: int, amount: float) -> FlowScore:
        past = self.history.get((account, weekday))
        n = len(past) if past else 0
        if amount <= 0 or not math.isfinite(amount):
            return FlowScore(float("nan"), float("nan"), float("nan"), n)
        if n < self.min_history:
            return FlowScore(float("nan"), float("nan"), float("nan"), n)
        logs = np.fromiter(past, dtype=float)
        med = float(np.median(logs))
        spread = max(MAD_SCALE * float(np.median(np.abs(logs - med))), self.min_spread)
        return FlowScore((math.log(amount) - med) / spread, math.exp(med), spread, n)

    def observe(self, account: str, weekday: int, amount: float) -> None:
        if amount > 0 and math.isfinite(amount):
            key = (account, weekday)
            self.history.setdefault(key, deque(maxlen=self.depth)).append(math.log(amount))

    def state(self) -> dict[str, Any]:
        return {"depth": self.depth, "min_history": self.min_history, "min_spread": self.min_spread,
                "history": [[a, w, list(v)] for (a, w), v in self.history.items()]}  # fmt: skip

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> FlowBaseline:
        out = cls(int(s["depth"]), int(s["min_history"]), float(s["min_spread"]))
        for account, weekday, logs in s["history"]:
            out.history[(account, int(weekday))] = deque(logs, maxlen=out.depth)
        return out


@dataclass(slots=True)
class RateBaseline:
    """EW mean and variance of a per-window count per account row (vectorized)."""

    halflife_windows: float = 60.0
    min_windows: int = 10
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    var: np.ndarray = field(default_factory=lambda: np.zeros(0))
    windows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def _grow(self, n: int) -> None:
        if self.mean.size < n:
            k = n - self.mean.size
            self.mean = np.concatenate([self.mean, np.zeros(k)])
            self.var = np.concatenate([self.var, np.zeros(k)])
            self.windows = np.concatenate([self.windows, np.zeros(k, dtype=np.int64)])

    def score(self, rows: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score, baseline mean) of this window's counts, before they are folded in."""
        self._grow(int(rows.max(initial=-1)) + 1)
        mean = self.mean[rows]
        noise = np.sqrt(np.maximum(np.maximum(self.var[rows], mean), 1.0))
        score = (counts - mean) / noise
        return np.where(self.windows[rows] >= self.min_windows, score, np.nan), mean

    def observe(self, rows: np.ndarray, counts: np.ndarray) -> None:
        """Fold one window's counts in (rows not named had a window of zero: pass them too)."""
        self._grow(int(rows.max(initial=-1)) + 1)
        alpha = 1.0 - 0.5 ** (1.0 / self.halflife_windows)
        d = counts - self.mean[rows]
        self.mean[rows] += alpha * d
        self.var[rows] = (1 - alpha) * (self.var[rows] + alpha * d * d)
        self.windows[rows] += 1

    def state(self) -> dict[str, Any]:
        return {"halflife_windows": self.halflife_windows, "min_windows": self.min_windows,
                "mean": self.mean.tolist(), "var": self.var.tolist(),
                "windows": self.windows.tolist()}  # fmt: skip

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> RateBaseline:
        return cls(float(s["halflife_windows"]), int(s["min_windows"]), np.asarray(s["mean"], float),
                   np.asarray(s["var"], float), np.asarray(s["windows"], np.int64))  # fmt: skip


def weekday_of(day: str) -> int:
    """Weekday (0 = Monday) of a YYYYMMDD banking day."""
    import datetime as dt

    return dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])).weekday()


def robust_z(values: Sequence[float], x: float, min_spread: float = 1e-12) -> float:
    """The robust z-score of x against values (median and MAD)."""
    v = np.asarray(values, dtype=float)
    med = float(np.median(v))
    spread = max(MAD_SCALE * float(np.median(np.abs(v - med))), min_spread)
    return (x - med) / spread
