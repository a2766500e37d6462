"""Judging rule sets on history: lead times before 100%, misses, noise, precision."""

from __future__ import annotations

import numpy as np
import pytest

from rules.rule_evaluation import Crossing, compare, crossings_from_series, evaluate_rule_set


def test_lead_times_misses_noise_and_precision() -> None:
    crossings = [Crossing("A", 10_000.0), Crossing("B", 20_000.0), Crossing("C", 30_000.0)]
    alerts = [
        {"ts": 9_000.0, "key": "A", "rule": "r80"},  # 1,000 s early
        {"ts": 9_500.0, "key": "A", "rule": "r80"},
        {"ts": 20_500.0, "key": "B", "rule": "r80"},  # after the crossing: not early warning
        {"ts": 1_000.0, "key": "D", "rule": "r80"},  # D never crosses: a false alarm
        {"ts": 25_000.0, "key": "C", "rule": "other"},
    ]
    ev = evaluate_rule_set("default", alerts, crossings, accounts=10, days=1.0, window_s=3_600,
                           rules={"r80"})  # fmt: skip
    assert ev.alerts == 4 and ev.caught == 1
    assert [c.key for c in ev.missed] == ["B", "C"]
    assert ev.lead_s.tolist() == [1_000.0]
    assert ev.precision == pytest.approx(1 / 3)  # A useful; B (late) and D not
    assert ev.alerts_per_account_day == pytest.approx(0.4)
    wide = evaluate_rule_set("all", alerts, crossings, accounts=10, days=1.0, window_s=6 * 3600)
    assert wide.caught == 2 and wide.lead_s.tolist() == [1_000.0, 5_000.0]
    rows = compare([ev, wide])
    assert [r["rule_set"] for r in rows] == ["default", "all"] and rows[1]["missed"] == 1


def test_crossings_from_series_one_per_episode() -> None:
    ts = np.arange(6, dtype=float)
    rd = np.array([[0.9, 0.5], [1.01, 0.5], [1.2, 0.5], [0.9, 1.0], [1.1, 0.99], [0.5, 1.0]])
    got = crossings_from_series(["A", "B"], ts, rd, line=1.0, rearm=0.95)
    # A crosses at 1, falls to 0.9 (re-armed), crosses again at 4; B at 3, not again (0.99 ≥ 0.95).
    assert [(c.key, c.ts) for c in got] == [("A", 1.0), ("A", 4.0), ("B", 3.0)]
