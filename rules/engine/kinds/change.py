"""change (环比): a metric against itself — one window ago, or the mean / z-score of the last
N windows. `withdraw > 2 × mean of 20 days`, `equity down 20% on the last 5 minutes`.

Windows are tumbling on the clock (Beijing time, so daily windows close at midnight): the
value a key had when window k closed is its baseline during window k+1. Per key the rule keeps
its latest value (`current`) and a ring of the last `n` closes; when the clock enters a new
window the ring takes `current` for every key — values only change when a key is re-marked,
so this is the close whichever keys were evaluated. The compared quantity:

| compare  | mode   | value compared with the threshold        |
| -------- | ------ | ---------------------------------------- |
| previous | pct    | (v − close) / |close|                     |
| previous | diff   | v − close                                |
| previous | ratio  | v / close (close > 0)                    |
| mean     | same   | against the mean of the last n closes    |
| zscore   | —      | (v − mean) / stddev of the last n closes |

Too little history (fewer than `min_windows` closes, a zero baseline) gives NaN: no firing,
no re-arming. Hysteresis on the compared quantity is the threshold bank's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.engine.kinds.threshold import ThresholdBank
from rules.engine.spec import NODE_SCOPES, RuleSpec
from rules.engine.template import Fired, KeyedGroup, Param, RuleKind, Source

BEIJING_S = 8 * 3600


class ChangeKind(RuleKind):
    name = "change"
    scopes = ("account", *NODE_SCOPES)
    params = (
        Param("window_s", (int, float), 300.0, "window length in seconds (86400: days)"),
        Param("compare", str, "previous", "previous window's close, mean or zscore of n",
              ("previous", "mean", "zscore")),
        Param("mode", str, "pct", "how v is set against the baseline", ("pct", "diff", "ratio")),
        Param("n", int, 20, "closes in the mean / z-score baseline"),
        Param("min_windows", int, None, "closes needed before the rule judges (default: 1, or n)"),
    )  # fmt: skip

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        super().check(spec, metrics)
        if float(spec.param("window_s")) <= 0:
            raise ValueError("window_s: must be positive")
        if int(spec.param("n", 20)) < 1:
            raise ValueError("n: must be at least 1")

    def build(self, specs: list[RuleSpec]) -> KeyedGroup:
        return ChangeRule(specs[0])


class ChangeRule(KeyedGroup):
    def __init__(self, spec: RuleSpec) -> None:
        super().__init__([spec])
        self.window = float(spec.param("window_s", 300.0))
        self.compare = spec.param("compare", "previous")
        self.mode = spec.param("mode", "pct")
        self.size = 1 if self.compare == "previous" else int(spec.param("n", 20))
        default_min = 1 if self.compare == "previous" else self.size
        self.min_windows = int(spec.param("min_windows") or default_min)
        self.bank = ThresholdBank([spec])
        self.current = np.full(0, np.nan)
        self.ring = np.full((0, self.size), np.nan)
        self.pos = 0  # ring column the next close goes to
        self.window_index: int | None = None

    def resize(self, n: int) -> None:
        old = self.current.shape[0]
        if n > old:
            cap = max(n, 2 * old, 64)
            cur = np.full(cap, np.nan)
            cur[:old] = self.current
            ring = np.full((cap, self.size), np.nan)
            ring[:old] = self.ring
            self.current, self.ring = cur, ring
        self.bank.resize(n)
        self.n = max(self.n, n)

    def roll(self, ts: float) -> None:
        """Enter the window of `ts`: every window closed since pushes the current values."""
        k = int((ts + BEIJING_S) // self.window)
        if self.window_index is None:
            self.window_index = k
            return
        for _ in range(min(max(k - self.window_index, 0), self.size)):
            self.ring[:, self.pos] = self.current
            self.pos = (self.pos + 1) % self.size
        self.window_index = max(self.window_index, k)

    def _baseline(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(baseline, scale) per row: the compared quantity is (v − baseline) / scale for
        pct/zscore, v − baseline for diff and v / baseline for ratio."""
        closes = self.ring[rows]
        have = np.sum(~np.isnan(closes), axis=1)
        enough = have >= self.min_windows
        if self.compare == "previous":
            base = closes[:, (self.pos - 1) % self.size]
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                base = np.where(have > 0, np.nansum(closes, axis=1) / np.maximum(have, 1), np.nan)
        base = np.where(enough, base, np.nan)
        if self.compare == "zscore":
            with np.errstate(invalid="ignore", divide="ignore"):
                dev = np.where(enough, closes - base[:, None], np.nan)
                var = np.nansum(dev * dev, axis=1) / np.maximum(have, 1)
            scale = np.sqrt(var)
        else:
            scale = np.abs(base)
        return base, scale

    def transform(self, v: np.ndarray, rows: np.ndarray) -> np.ndarray:
        base, scale = self._baseline(rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.compare == "zscore" or self.mode == "pct":
                out = (v - base) / scale
            elif self.mode == "diff":
                out = v - base
            else:
                out = np.where(base > 0, v / base, np.nan)
        out[~np.isfinite(out)] = np.nan
        return out

    def evaluate(self, source: Source, rows: np.ndarray, ts: float) -> list[Fired]:
        if rows.size == 0:
            return []
        self.resize(int(rows.max()) + 1)
        self.roll(ts)
        v = np.asarray(source(self.metric, rows), dtype=np.float64)
        self.current[rows] = v
        return self.bank.evaluate_values(self.transform(v, rows), rows)

    def observe(self, source: Source, rows: np.ndarray, ts: float) -> None:
        if rows.size == 0:
            return
        self.resize(int(rows.max()) + 1)
        self.roll(ts)
        self.current[rows] = np.asarray(source(self.metric, rows), dtype=np.float64)

    def rolls(self, prev_ts: float | None, ts: float) -> bool:
        """A new window changes every key's baseline: the engine evaluates all keys then."""
        if prev_ts is None:
            return True
        return (prev_ts + BEIJING_S) // self.window != (ts + BEIJING_S) // self.window

    def evaluate_path(
        self, values: np.ndarray, rows: np.ndarray, steps: np.ndarray, ts: np.ndarray
    ) -> list[tuple[int, Fired]]:
        """Within one window (the backtest cuts its blocks at window edges) the baseline is
        fixed: transform every step's values with it and let the bank scan them."""
        if rows.size == 0:
            return []
        self.resize(int(rows.max()) + 1)
        self.roll(float(ts[0]))
        self.current[rows] = values[-1]
        out = np.vstack([self.transform(v, rows) for v in values])
        return self.bank.evaluate_path(out, rows, steps, ts)

    def uncertain(self, lo: np.ndarray, hi: np.ndarray, rows: np.ndarray, ts: float) -> np.ndarray:
        """The baseline is fixed within a window, so the compared quantity is monotone in v
        (increasing, since scales are positive): its bounds are the transformed bounds. The
        backtest cuts its blocks at window edges for this."""
        self.resize(int(rows.max()) + 1 if rows.size else 0)
        a, b = self.transform(lo, rows), self.transform(hi, rows)
        judged = ~(np.isnan(a) & np.isnan(b))  # no baseline yet: NaN never fires nor re-arms
        return self.bank.uncertain(a, b, rows, ts) & judged

    def export(self, rule_id: str) -> Any:
        return (self.bank.export(rule_id), self.current[: self.n].copy(),
                self.ring[: self.n].copy(), self.pos, self.window_index)  # fmt: skip

    def restore(self, rule_id: str, state: Any) -> None:
        bank, current, ring, pos, index = state
        self.resize(current.shape[0])
        self.bank.restore(rule_id, bank)
        self.current[: current.shape[0]] = current
        self.ring[: ring.shape[0]] = ring
        self.pos, self.window_index = pos, index
