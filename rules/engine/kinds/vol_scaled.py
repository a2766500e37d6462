"""vol_scaled_move: a price move judged against the contract's own volatility, not a fixed %.

    [[rules]]
    id = "market.vol_scaled_move"
    kind = "vol_scaled_move"
    threshold = 4.0          # k: fire when |move over window_bars bars| > k × σ of such a move
    bar_s = 60               # bars the baseline is learned on
    window_bars = 5          # the move: from the close of the bar 5 bars back to the last price
    halflife_bars = 240      # the baseline forgets with this halflife (about a trading day)
    min_bars = 30            # bars seen before a contract has a baseline (until then: no score)

A fixed "price moved 2%" fires all day on a volatile contract and never on a quiet one. Here
each contract keeps an exponentially weighted variance of its own bar-to-bar log returns
(rules.adaptive.VolatilityBaseline); a move over `window_bars` bars scores
|ln(last / close then)| / (σ_bar × √window_bars) and the rule fires when the score passes k.
The alert carries the score, the baseline σ of a `window_bars` move and the move itself.

The state folds every slice of ticks (a bar closes when a contract's first tick of the next bar
arrives: bars without ticks are not bars), whatever the rule's sessions, so the baseline is the
same whether or not the rule is active. It is plain data keyed by instrument (`state`), so a
restarted feed or a later backtest can start from it (`restore`, applied to a contract when it
first ticks). Pure: numpy and stdlib only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rules.adaptive import VolatilityBaseline
from rules.market_stats import SliceSignals


class VolScaledMove:
    """Per contract row: the open bar, a ring of the last `window_bars` closes, the baseline."""

    def __init__(self, bar_s: int, window_bars: int, halflife_bars: float, min_bars: int) -> None:
        self.bar_s = int(bar_s)
        self.w = int(window_bars)
        self.baseline = VolatilityBaseline(float(halflife_bars), int(min_bars))
        self.epoch = np.full(0, -1, dtype=np.int64)
        self.close = np.full(0, np.nan)
        self.ring = np.full((0, self.w), np.nan)
        self.count = np.zeros(0, dtype=np.int64)

    @classmethod
    def of(cls, spec: Any) -> VolScaledMove:
        return cls(int(spec.param("bar_s", 60)), int(spec.param("window_bars", 5)),
                   float(spec.param("halflife_bars", 240.0)), int(spec.param("min_bars", 30)))  # fmt: skip

    def describe(self) -> str:
        minutes = self.w * self.bar_s / 60
        return f"{minutes:g}-min volatility (EW, halflife {self.baseline.halflife_bars:g} bars)"

    def resize(self, n: int) -> None:
        k = n - self.epoch.size
        if k > 0:
            self.epoch = np.concatenate([self.epoch, np.full(k, -1, dtype=np.int64)])
            self.close = np.concatenate([self.close, np.full(k, np.nan)])
            self.ring = np.vstack([self.ring, np.full((k, self.w), np.nan)])
            self.count = np.concatenate([self.count, np.zeros(k, dtype=np.int64)])
            self.baseline._grow(n)

    def on_slice(self, sig: SliceSignals) -> dict[str, np.ndarray]:
        """Fold the slice, then score every row of it: score, σ of the move, the move."""
        u = sig.rows
        self.resize(int(u.max(initial=-1)) + 1)
        epoch = sig.second // self.bar_s
        done = u[(self.epoch[u] >= 0) & (self.epoch[u] != epoch)]
        if done.size:
            closes = self.close[done]
            self.baseline.update(done, closes)
            self.ring[done, self.count[done] % self.w] = closes
            self.count[done] += 1
        self.epoch[u] = epoch
        self.close[u] = sig.last
        ref = self.ring[u, self.count[u] % self.w]  # the oldest of the last w closes
        ref[self.count[u] < self.w] = np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            score, sigma = self.baseline.score(u, ref, sig.last, float(self.w))
            ok = (ref > 0) & (sig.last > 0)
            move = np.where(ok, np.log(np.where(ok, sig.last / np.where(ok, ref, 1.0), 1.0)),
                            np.nan)  # fmt: skip
        return {"score": score, "baseline": sigma, "move": move}

    # -- recoverable state, keyed by instrument ----------------------------------------------
    def state(self, names: list[str]) -> dict[str, Any]:
        n = min(len(names), self.epoch.size)
        b = self.baseline
        b._grow(n)
        return {"names": list(names[:n]), "epoch": self.epoch[:n].tolist(),
                "close": _plain(self.close[:n]), "ring": [_plain(r) for r in self.ring[:n]],
                "count": self.count[:n].tolist(), "variance": b.variance[:n].tolist(),
                "bars": b.bars[:n].tolist(), "last": _plain(b.last[:n])}  # fmt: skip

    def restore_rows(self, state: dict[str, Any], rows: dict[str, int]) -> list[str]:
        """Restore the contracts of `state` that have rows; returns the names restored."""
        got = []
        for i, name in enumerate(state["names"]):
            row = rows.get(name)
            if row is None:
                continue
            self.resize(row + 1)
            self.epoch[row] = int(state["epoch"][i])
            self.close[row] = _num(state["close"][i])
            self.ring[row] = [_num(x) for x in state["ring"][i]][: self.w]
            self.count[row] = int(state["count"][i])
            self.baseline.variance[row] = float(state["variance"][i])
            self.baseline.bars[row] = int(state["bars"][i])
            self.baseline.last[row] = _num(state["last"][i])
            got.append(name)
        return got


def _plain(a: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(x) else x for x in np.asarray(a, float).tolist()]


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)
