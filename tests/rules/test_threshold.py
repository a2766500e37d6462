from __future__ import annotations

import numpy as np
import pytest

from rules.threshold import HysteresisState, ThresholdRule, evaluate


def test_fires_once_on_crossing_and_rearms_below_lower_level():
    rule = ThresholdRule("r", "risk_degree", ">", threshold=0.8, rearm=0.75)
    state = HysteresisState()
    state.resize(1)
    fired = []
    for value in [0.5, 0.81, 0.9, 0.79, 0.82, 0.74, 0.85]:
        fired.append(len(evaluate(rule, np.array([value]), state)) == 1)
    # fires at 0.81; stays quiet at 0.9, 0.79 (not below 0.75), 0.82; re-arms at 0.74; fires at 0.85
    assert fired == [False, True, False, False, False, False, True]
    assert state.episode[0] == 2


def test_vectorized_over_keys_and_rows_subset():
    rule = ThresholdRule("r", "available", "<", threshold=100.0, rearm=150.0)
    state = HysteresisState()
    state.resize(4)
    rows = np.array([1, 3])
    fired = evaluate(rule, np.array([50.0, 200.0]), state, rows)
    assert fired.tolist() == [1]
    assert state.armed.tolist() == [True, False, True, True]


def test_rearm_on_wrong_side_is_rejected():
    with pytest.raises(ValueError, match="rearm"):
        ThresholdRule("r", "risk_degree", ">", threshold=0.8, rearm=0.9)
