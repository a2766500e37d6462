"""The engine's one hysteresis (rules.engine.kinds.threshold.ThresholdBank) for one rule:
fire once on crossing, re-arm only past the re-arm level, vectorized over keys."""

from __future__ import annotations

import numpy as np
import pytest

from rules.engine.kinds.threshold import ThresholdBank
from rules.engine.spec import RuleSpec, check_common


def test_fires_once_on_crossing_and_rearms_below_lower_level():
    rule = RuleSpec("r", metric="risk_degree", op=">", threshold=0.8, rearm=0.75)
    bank = ThresholdBank([rule])
    bank.resize(1)
    fired = []
    for value in [0.5, 0.81, 0.9, 0.79, 0.82, 0.74, 0.85]:
        fired.append(len(bank.evaluate_values(np.array([value]), np.array([0]))) == 1)
    # fires at 0.81; stays quiet at 0.9, 0.79 (not below 0.75), 0.82; re-arms at 0.74; fires at 0.85
    assert fired == [False, True, False, False, False, False, True]
    assert bank.episode("r", 0) == 2


def test_vectorized_over_keys_and_rows_subset():
    rule = RuleSpec("r", metric="available", op="<", threshold=100.0, rearm=150.0)
    bank = ThresholdBank([rule])
    bank.resize(4)
    rows = np.array([1, 3])
    [fired] = bank.evaluate_values(np.array([50.0, 200.0]), rows)
    assert fired.rows.tolist() == [1]
    assert bank.armed[0, :4].tolist() == [True, False, True, True]


def test_rearm_on_wrong_side_is_rejected():
    with pytest.raises(ValueError, match="rearm"):
        check_common(RuleSpec("r", metric="risk_degree", op=">", threshold=0.8, rearm=0.9))
