"""Adaptive account kinds: the line is learned from the account's own history, not typed.

    [[rules]]                                 [[rules]]
    id = "account.fundflow_anomaly"           id = "account.order_anomaly"
    kind = "fundflow_anomaly"                 kind = "order_behaviour_anomaly"
    threshold = 4.0    # robust z             metric = "cancels"   # orders / cancels / trades
    direction = "withdraw"                    threshold = 6.0      # z against its own rate
    depth = 12         # past transfers kept  window_s = 60        # counted per window
    min_history = 4    # per weekday          halflife_windows = 60
                                              min_windows = 10

- fundflow_anomaly (runs on transfers, like fund_flow): a transfer scores
  (ln amount − median) / (1.4826 × MAD) against the account's own last `depth` transfers of
  that direction on the same weekday (rules.adaptive.FlowBaseline: pay-days and month-ends are
  not Tuesdays); judged from `min_history` of them on. Each transfer is judged alone (re-armed
  at once) and then joins the baseline.
- order_behaviour_anomaly (runs on the order stream): the count of the current window scores
  (count − mean) / √max(var, mean, 1) against the account's own EW mean and variance of past
  windows (rules.adaptive.RateBaseline). A window closes when the stream's time passes it;
  windows in which the shard saw no order activity at all (market closed) are not folded, so a
  night does not teach every account that zero is normal. After a restore, records older than
  the open window (a replay of what the baseline holds) are skipped and the open window is
  counted again from the replay.

Every alert carries the score, the baseline and the threshold (rules.engine.evidence). The
state is plain data (`state` / `restore_state`), part of the shard's recoverable state.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rules.adaptive import FlowBaseline, RateBaseline, weekday_of
from rules.engine.kinds.threshold import ThresholdBank
from rules.engine.spec import RuleSpec, check_common
from rules.engine.template import Fired, KeyedGroup, Param, RuleKind, Source

DIRECTIONS = ("withdraw", "deposit", "any")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
COUNTED = {"orders": "order", "cancels": "cancel", "trades": "trade"}


class AdaptiveKind(RuleKind):
    """Account kinds scored against each key's own baseline: op '>' on a score."""

    scopes = ("account",)
    needs_metric = False

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        check_common(spec)
        if spec.scope != "account":
            raise ValueError(f"scope: kind {self.name!r} runs on accounts, got {spec.scope!r}")
        if spec.op != ">":
            raise ValueError(f"op: kind {self.name!r} fires above its score threshold, use '>'")
        if spec.threshold <= 0:
            raise ValueError("threshold: the score (z) to fire above must be positive")


class FundFlowAnomalyKind(AdaptiveKind):
    name = "fundflow_anomaly"
    defaults = {"metric": "transfer"}
    params = (
        Param("direction", str, "withdraw", "which transfers are judged", DIRECTIONS),
        Param("depth", int, 12, "past transfers per account and weekday kept"),
        Param("min_history", int, 4, "fewer past transfers on that weekday: no baseline"),
        Param("min_spread", float, 0.25, "smallest spread (log units) of a baseline"),
    )

    def place(self, spec: RuleSpec) -> str:
        return "transfers"

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        super().check(spec, metrics)
        if spec.metric != "transfer":
            raise ValueError("metric: kind 'fundflow_anomaly' judges each 'transfer'")
        if int(spec.param("depth", 12)) < 2 or int(spec.param("min_history", 4)) < 2:
            raise ValueError("depth: needs at least 2 (and min_history at least 2)")
        if float(spec.param("min_spread", 0.25)) <= 0:
            raise ValueError("min_spread: must be positive")

    def build(self, specs: list[RuleSpec]) -> KeyedGroup:
        return FundFlowAnomalyRule(specs[0])


class FundFlowAnomalyRule(KeyedGroup):
    """One fundflow_anomaly rule over a shard's accounts; evaluated on a TransferSource."""

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__([spec])
        self.spec = spec
        self.bank = ThresholdBank([spec])
        self.direction = str(spec.param("direction", "withdraw"))
        self.flows = FlowBaseline(int(spec.param("depth", 12)), int(spec.param("min_history", 4)),
                                  float(spec.param("min_spread", 0.25)))  # fmt: skip
        self.seen: dict[str, float] = {}  # per baseline key: the latest transfer time folded
        self.pending: dict[str, Any] | None = None  # restored state of accounts not seen yet

    def resize(self, n: int) -> None:
        self.bank.resize(n)
        self.n = max(self.n, n)

    def evaluate(self, source: Source, rows: np.ndarray, ts: float) -> list[Fired]:
        if rows.size == 0:
            return []
        amounts, deposits = source.amounts(rows), source.deposits(rows)  # type: ignore[attr-defined]
        weekday = weekday_of(source.day)  # type: ignore[attr-defined]
        n = rows.size
        score, median, history = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.int64)
        for j, (row, amount, deposit) in enumerate(zip(rows.tolist(), amounts.tolist(),
                                                       deposits.tolist(), strict=True)):  # fmt: skip
            if self.direction != "any" and deposit != (self.direction == "deposit"):
                continue
            key = f"{row}/{'deposit' if deposit else 'withdraw'}"
            if ts <= self.seen.get(key, -math.inf):
                continue  # replayed after a restore: already in the baseline
            s = self.flows.score(key, weekday, amount)
            score[j], median[j], history[j] = s.score, s.median, s.history
            self.flows.observe(key, weekday, amount)
            self.seen[key] = ts
        self.bank.resize(int(rows.max()) + 1)
        at, episodes = self.bank.step_one(score, rows)
        self.bank.rearm(rows)  # each transfer is judged alone
        if not at.size:
            return []
        label = {"withdraw": "withdrawals", "deposit": "deposits"}.get(self.direction, "transfers")
        attrs = {"score": score[at], "baseline": median[at], "move": amounts[at],
                 "history": history[at], "threshold": float(self.spec.threshold),
                 "baseline_of": f"{WEEKDAYS[weekday]} {label} (median of its last ones)",
                 "unit": "z", "fmt": "money"}  # fmt: skip
        return [Fired(self.spec, rows[at], score[at], episodes, None, attrs)]

    def state(self, names: Sequence[str]) -> dict[str, Any]:
        """Plain data keyed by account id (`names[row]`): rows differ between two runs."""
        history = [[names[int(k.split("/")[0])], k.split("/")[1], w, list(v)]
                   for (k, w), v in self.flows.history.items()]  # fmt: skip
        seen = {f"{names[int(k.split('/')[0])]}/{k.split('/')[1]}": t for k, t in self.seen.items()}
        return {"history": history, "seen": seen}

    def restore_state(self, state: Mapping[str, Any], rows: Mapping[str, int]) -> None:
        """The baselines of the accounts in `rows` now; the others when they appear (adopt)."""
        self.pending = {"history": list(state["history"]), "seen": dict(state["seen"])}
        self.adopt(rows)

    def adopt(self, rows: Mapping[str, int]) -> None:
        if not self.pending:
            return
        left: list[Any] = []
        for account, direction, weekday, logs in self.pending["history"]:
            row = rows.get(account)
            if row is None:
                left.append([account, direction, weekday, logs])
                continue
            key = (f"{row}/{direction}", int(weekday))
            self.flows.history[key] = deque(logs, maxlen=self.flows.depth)
        seen = {}
        for name, t in self.pending["seen"].items():
            account, direction = name.rsplit("/", 1)
            row = rows.get(account)
            if row is None:
                seen[name] = t
            else:
                self.seen[f"{row}/{direction}"] = float(t)
        self.pending = {"history": left, "seen": seen} if left or seen else None

    def export(self, rule_id: str) -> Any:
        return self.bank.export(rule_id), self.flows, dict(self.seen), self.pending

    def restore(self, rule_id: str, state: Any) -> None:  # hot reload: the same objects
        bank, self.flows, self.seen, self.pending = state
        self.bank.restore(rule_id, bank)


class OrderBehaviourAnomalyKind(AdaptiveKind):
    name = "order_behaviour_anomaly"
    defaults = {"metric": "orders"}
    params = (
        Param("window_s", (int, float), 60.0, "the counting window in seconds"),
        Param("halflife_windows", (int, float), 60.0, "the baseline's halflife in windows"),
        Param("min_windows", int, 10, "windows seen before an account has a baseline"),
    )

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        super().check(spec, metrics)
        if spec.metric not in COUNTED:
            raise ValueError(f"metric: must be one of {tuple(COUNTED)}, got {spec.metric!r}")
        if float(spec.param("window_s", 60.0)) <= 0:
            raise ValueError("window_s: must be positive")
        if float(spec.param("halflife_windows", 60.0)) <= 0 or int(spec.param("min_windows")) < 1:
            raise ValueError("halflife_windows: must be positive (and min_windows at least 1)")

    def build(self, specs: list[RuleSpec]) -> KeyedGroup:
        return OrderBehaviourAnomalyRule(specs[0])


class OrderBehaviourAnomalyRule(KeyedGroup):
    def __init__(self, spec: RuleSpec) -> None:
        super().__init__([spec])
        self.spec = spec
        self.counted = COUNTED[spec.metric]
        self.window_s = float(spec.param("window_s", 60.0))
        self.rates = RateBaseline(float(spec.param("halflife_windows", 60.0)),
                                  int(spec.param("min_windows", 10)))  # fmt: skip
        self.counts = np.zeros(0, dtype=np.float64)
        self.window: int | None = None  # the open window's number (stream time / window_s)
        self.busy = False  # any order activity in the open window
        self.pending: dict[str, Any] | None = None  # restored state of accounts not seen yet
        self.bank = ThresholdBank([spec])

    def resize(self, n: int) -> None:
        if n > self.counts.size:
            self.counts = np.concatenate([self.counts, np.zeros(n - self.counts.size)])
        self.bank.resize(n)
        self.n = max(self.n, n)

    def _advance(self, ts: float) -> bool:
        """Move to the window of `ts`, folding the open one; False for a record too old."""
        w = int(math.floor(ts / self.window_s))
        if self.window is None or w > self.window:
            if self.window is not None and self.busy:
                self.rates.observe(np.arange(self.n), self.counts[: self.n])
            self.counts[:] = 0.0
            self.busy = False
            self.window = w
        return w == self.window

    def on_activity(self, kind: str, rows: np.ndarray, ts: float) -> None:
        if rows.size == 0 or kind not in ("order", "cancel", "trade"):
            return
        self.resize(int(rows.max()) + 1)
        if not self._advance(ts):
            return  # older than the open window (a replay of what the baseline has)
        self.busy = True
        if kind == self.counted:
            np.add.at(self.counts, rows, 1.0)

    def evaluate(self, source: Source, rows: np.ndarray, ts: float) -> list[Fired]:
        if rows.size == 0:
            return []
        self.resize(int(rows.max()) + 1)
        counts = self.counts[rows]
        score, mean = self.rates.score(rows, counts)
        at, episodes = self.bank.step_one(score, rows)
        if not at.size:
            return []
        attrs = {"score": score[at], "baseline": mean[at], "move": counts[at],
                 "threshold": float(self.spec.threshold),
                 "baseline_of": f"{self.spec.metric} per {self.window_s:g} s",
                 "unit": "z", "fmt": "rate"}  # fmt: skip
        return [Fired(self.spec, rows[at], score[at], episodes, None, attrs)]

    def uncertain(self, lo: np.ndarray, hi: np.ndarray, rows: np.ndarray, ts: float) -> np.ndarray:
        return np.zeros(rows.shape[0], dtype=bool)  # prices do not move it

    def state(self, names: Sequence[str]) -> dict[str, Any]:
        """Plain data keyed by account id: per account mean, variance, windows and the open
        window's count; the open window's number (stream time) is the shard's."""
        r = self.rates
        r._grow(self.n)
        keep = np.flatnonzero((r.windows[: self.n] > 0) | (self.counts[: self.n] > 0))
        accounts = {names[i]: [float(r.mean[i]), float(r.var[i]), int(r.windows[i]),
                               float(self.counts[i])] for i in keep.tolist()}  # fmt: skip
        return {"accounts": accounts, "window": self.window, "busy": self.busy}

    def restore_state(self, state: Mapping[str, Any], rows: Mapping[str, int]) -> None:
        self.window = None if state["window"] is None else int(state["window"])
        self.busy = bool(state["busy"])
        self.pending = dict(state["accounts"])
        self.adopt(rows)

    def adopt(self, rows: Mapping[str, int]) -> None:
        if not self.pending:
            return
        found = [(rows[a], v) for a, v in self.pending.items() if a in rows]
        if found:
            at = np.array([row for row, _ in found], dtype=np.int64)
            self.resize(int(at.max()) + 1)
            self.rates._grow(int(at.max()) + 1)
            vals = np.array([v for _, v in found], dtype=np.float64)
            self.rates.mean[at], self.rates.var[at] = vals[:, 0], vals[:, 1]
            self.rates.windows[at] = vals[:, 2].astype(np.int64)
            # The open window's count is not restored: the account bus replays its records
            # (older windows' records are skipped, they are in the baseline already).
        self.pending = {a: v for a, v in self.pending.items() if a not in rows} or None

    def export(self, rule_id: str) -> Any:
        return (self.bank.export(rule_id), self.rates, self.counts, self.window, self.busy,
                self.pending)  # fmt: skip

    def restore(self, rule_id: str, state: Any) -> None:  # hot reload: the same objects
        bank, self.rates, counts, self.window, self.busy, self.pending = state
        self.bank.restore(rule_id, bank)
        self.resize(counts.size)
        self.counts[: counts.size] = counts
