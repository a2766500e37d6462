"""behaviour: how an account trades — orders and cancels per window, cancel ratio, trades and
self-trades — from the order/trade stream (TqSdk's order+cancel rate in a sliding window).

Input records (on the account bus, like snapshots and fills; `ts` is the exchange/gateway time):

    {"type": "order",  "account_id", "order_ref", "instrument", "direction", "offset", "volume",
     "price", "ts"}                                        an order inserted (报单)
    {"type": "cancel", "account_id", "order_ref", "instrument", "ts"}   an order cancelled (撤单)
    {"type": "trade",  ..., "trade_id", "ts"}              a fill (already on the bus)

A self-trade is two fills of one account on the same instrument with the same exchange
`trade_id` and opposite directions: the account traded with itself (对敲). Per rule the counts
live in a ring of `BUCKETS` time buckets per key, so a window is a sum of at most BUCKETS
columns (a window of W seconds covers W − W/BUCKETS to W). `cancel_ratio` is cancels / orders
in the window, judged only from `min_orders` orders on (one cancelled order is not a pattern).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from rules.engine.kinds.threshold import ThresholdBank
from rules.engine.metrics import BEHAVIOUR_METRICS
from rules.engine.spec import RuleSpec
from rules.engine.template import Fired, KeyedGroup, Param, RuleKind, Source

BUCKETS = 20
ACTIVITIES = ("order", "cancel", "trade", "self_trade")
_COUNTED = {"orders": "order", "cancels": "cancel", "trades": "trade", "self_trades": "self_trade"}


class BehaviourKind(RuleKind):
    name = "behaviour"
    scopes = ("account",)
    params = (
        Param("window_s", (int, float), 1.0, "sliding window in seconds"),
        Param("min_orders", int, 10, "cancel_ratio: orders in the window before it is judged"),
    )

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        super().check(spec, BEHAVIOUR_METRICS)
        if float(spec.param("window_s")) <= 0:
            raise ValueError("window_s: must be positive")

    def build(self, specs: list[RuleSpec]) -> KeyedGroup:
        return BehaviourRule(specs[0])


class ActivityWindow:
    """Counts of order-stream activities per key in a ring of time buckets."""

    def __init__(self, window_s: float, kinds: tuple[str, ...]) -> None:
        self.width = window_s / BUCKETS
        self.kinds = kinds
        self.counts = {k: np.zeros((0, BUCKETS), dtype=np.int32) for k in kinds}
        self.epoch = np.full(BUCKETS, -(1 << 62), dtype=np.int64)  # bucket number per column
        self.latest = -(1 << 62)

    def resize(self, n: int) -> None:
        for k, arr in self.counts.items():
            if n > arr.shape[0]:
                grown = np.zeros((max(n, 2 * arr.shape[0], 64), BUCKETS), dtype=np.int32)
                grown[: arr.shape[0]] = arr
                self.counts[k] = grown

    def _bucket(self, ts: float) -> int:
        return int(np.floor(ts / self.width))

    def add(self, kind: str, rows: np.ndarray, ts: float) -> None:
        if kind not in self.counts or rows.size == 0:
            return
        b = self._bucket(ts)
        if b <= self.latest - BUCKETS:
            return  # older than the window: it can no longer count
        col = b % BUCKETS
        if self.epoch[col] != b:
            if self.epoch[col] > b:
                return  # the column holds a newer bucket
            for arr in self.counts.values():
                arr[:, col] = 0
            self.epoch[col] = b
        self.latest = max(self.latest, b)
        np.add.at(self.counts[kind][:, col], rows, 1)

    def total(self, kind: str, rows: np.ndarray, ts: float) -> np.ndarray:
        b = self._bucket(ts)
        live = (self.epoch > b - BUCKETS) & (self.epoch <= b)
        return self.counts[kind][rows][:, live].sum(axis=1)


class BehaviourRule(KeyedGroup):
    def __init__(self, spec: RuleSpec) -> None:
        super().__init__([spec])
        kinds = ("order", "cancel") if spec.metric == "cancel_ratio" else (_COUNTED[spec.metric],)
        self.window = ActivityWindow(float(spec.param("window_s", 1.0)), kinds)
        self.min_orders = int(spec.param("min_orders", 10))
        self.bank = ThresholdBank([spec])

    def resize(self, n: int) -> None:
        self.window.resize(n)
        self.bank.resize(n)
        self.n = max(self.n, n)

    def on_activity(self, kind: str, rows: np.ndarray, ts: float) -> None:
        if rows.size:
            self.resize(int(rows.max()) + 1)
            self.window.add(kind, rows, ts)

    def values(self, rows: np.ndarray, ts: float) -> np.ndarray:
        if self.metric != "cancel_ratio":
            return self.window.total(_COUNTED[self.metric], rows, ts).astype(np.float64)
        orders = self.window.total("order", rows, ts).astype(np.float64)
        cancels = self.window.total("cancel", rows, ts).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(orders >= self.min_orders, cancels / orders, np.nan)

    def evaluate(self, source: Source, rows: np.ndarray, ts: float) -> list[Fired]:
        if rows.size == 0:
            return []
        self.resize(int(rows.max()) + 1)
        return self.bank.evaluate_values(self.values(rows, ts), rows)

    def uncertain(self, lo: np.ndarray, hi: np.ndarray, rows: np.ndarray, ts: float) -> np.ndarray:
        return np.zeros(rows.shape[0], dtype=bool)  # prices do not move it

    def export(self, rule_id: str) -> Any:
        return self.bank.export(rule_id), self.window

    def restore(self, rule_id: str, state: Any) -> None:
        bank, window = state
        self.window = window
        self.bank.restore(rule_id, bank)


class SelfTradeDetector:
    """Remembers recent fills by (account row, instrument, trade_id); a second fill of the
    same trade in the opposite direction is a self-trade."""

    def __init__(self, memory: int = 100_000) -> None:
        self.memory = memory
        self.seen: OrderedDict[tuple[int, str, str], int] = OrderedDict()

    def fill(self, row: int, instrument: str, trade_id: str, direction: int) -> bool:
        if not trade_id:
            return False
        key = (row, instrument, trade_id)
        before = self.seen.get(key)
        if before is not None and before != direction:
            del self.seen[key]
            return True
        self.seen[key] = direction
        if len(self.seen) > self.memory:
            self.seen.popitem(last=False)
        return False
