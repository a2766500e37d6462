"""Behaviour rules on the order stream: orders and cancels per sliding window, cancel ratio
from a minimum number of orders, self-trades."""

from __future__ import annotations

import numpy as np

from rules.engine.evaluator import RuleEngine
from rules.engine.kinds.behaviour import ActivityWindow, SelfTradeDetector
from rules.engine.spec import RuleSpec

ROW0 = np.array([0])


def test_window_counts_slide_out():
    w = ActivityWindow(10.0, ("order",))
    w.resize(2)
    for ts in (100.0, 101.0, 105.0):
        w.add("order", ROW0, ts)
    assert w.total("order", np.array([0, 1]), 105.0).tolist() == [3, 0]
    assert w.total("order", ROW0, 111.2).tolist() == [1]  # 100 and 101 left the window
    assert w.total("order", ROW0, 116.0).tolist() == [0]
    w.add("order", ROW0, 90.0)  # older than the window: ignored
    assert w.total("order", ROW0, 116.0).tolist() == [0]


def behaviour(metric: str, threshold: float, rearm: float, **params) -> RuleSpec:
    return RuleSpec(id=metric, kind="behaviour", metric=metric, threshold=threshold, rearm=rearm,
                    params={"window_s": 5.0, "min_orders": 4, **params})  # fmt: skip


def fired(engine: RuleEngine, ts: float) -> list[str]:
    return [f.spec.id for f in engine.evaluate(lambda m, r: np.zeros(r.size), ROW0, ts)]


def test_orders_per_window_fire_once_and_rearm():
    engine = RuleEngine([behaviour("orders", 3, 1)])
    for i in range(4):
        engine.on_activity("order", ROW0, 100.0 + i * 0.1)
    assert fired(engine, 100.5) == ["orders"]
    assert fired(engine, 100.6) == []
    assert fired(engine, 107.0) == []  # window empty: re-armed
    for _ in range(4):
        engine.on_activity("order", ROW0, 108.0)
    assert fired(engine, 108.1) == ["orders"]


def test_cancel_ratio_needs_enough_orders():
    engine = RuleEngine([behaviour("cancel_ratio", 0.7, 0.5)])
    for _ in range(3):
        engine.on_activity("order", ROW0, 100.0)
        engine.on_activity("cancel", ROW0, 100.0)
    assert fired(engine, 100.1) == []  # 3 orders: not judged
    engine.on_activity("order", ROW0, 100.2)
    engine.on_activity("cancel", ROW0, 100.2)
    assert fired(engine, 100.3) == ["cancel_ratio"]


def test_self_trade_is_both_sides_of_one_exchange_trade():
    d = SelfTradeDetector()
    assert not d.fill(0, "rb2601", "T1", 1)
    assert not d.fill(1, "rb2601", "T1", -1)  # another account: a normal trade
    assert not d.fill(0, "rb2601", "T2", 1)
    assert d.fill(0, "rb2601", "T1", -1)
    assert not d.fill(0, "rb2601", "", -1)  # no trade id: cannot tell
