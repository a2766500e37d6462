"""Market rules (the market kinds of the rule engine, on its one hysteresis): per contract,
restriction to sessions and products."""

from __future__ import annotations

import numpy as np
import pytest

from rules.engine.kinds.market import market_spec
from rules.engine.kinds.market_set import MarketRuleSet, SilenceState
from rules.engine.spec import RuleSpec
from rules.market_stats import SliceSignals
from rules.sessions import LABEL_BITS


def signals(rows, jump_z=None, near=None, locked=None) -> SliceSignals:
    n = len(rows)
    zeros = np.zeros(n)
    return SliceSignals(
        rows=np.asarray(rows),
        second=0,
        ts=zeros,
        last=np.full(n, 100.0),
        jump_z=np.asarray(jump_z if jump_z is not None else zeros, float),
        jump_move=zeros,
        near_limit=np.asarray(near if near is not None else np.full(n, np.nan), float),
        limit_side=np.zeros(n, np.int8),
        locked=np.asarray(locked if locked is not None else np.zeros(n, bool)),
        volume_ratio=zeros,
        oi_ratio=zeros,
        rv={300: zeros},
    )


def ruleset(*rules: RuleSpec) -> MarketRuleSet:
    rs = MarketRuleSet(list(rules), (60, 300, 1800))
    rs.add_rows(["rb2601", "cu2601", "IF2601"], ["rb", "cu", "IF"])
    return rs


DAY = LABEL_BITS["day"]
NIGHT = LABEL_BITS["night"]


def test_fires_once_per_crossing_and_rearms_past_the_rearm_level():
    rs = ruleset(market_spec("jump", "jump", 6.0, 3.0))
    bits = np.full(2, DAY)
    fired = rs.on_slice(signals([0, 1], jump_z=[7.0, 2.0]), bits)
    assert [f.rows.tolist() for f in fired] == [[0]] and fired[0].episodes.tolist() == [1]
    assert fired[0].values.tolist() == [7.0] and fired[0].picks.tolist() == [0]
    assert rs.on_slice(signals([0], jump_z=[9.0]), bits[:1]) == []  # still beyond: once
    assert rs.on_slice(signals([0], jump_z=[4.0]), bits[:1]) == []  # not yet re-armed
    assert rs.on_slice(signals([0], jump_z=[2.0]), bits[:1]) == []  # re-armed
    again = rs.on_slice(signals([0, 1], jump_z=[8.0, 8.0]), bits)
    assert again[0].rows.tolist() == [0, 1] and again[0].episodes.tolist() == [2, 1]


def test_near_limit_fires_below_and_limit_locked_on_the_flag():
    rs = ruleset(
        market_spec("near", "near_limit", 0.01, 0.015),
        market_spec("locked", "limit_locked", 0.5, 0.5, "critical"),
    )
    fired = rs.on_slice(
        signals([0, 1, 2], near=[0.005, np.nan, 0.2], locked=[True, False, False]),
        np.full(3, DAY),
    )
    assert {f.rule.id: f.rows.tolist() for f in fired} == {"near": [0], "locked": [0]}


def test_session_restricted_rule_skips_contracts_outside_its_sessions():
    rs = ruleset(market_spec("night-jump", "jump", 6.0, 3.0, sessions=("night",)))
    sig = signals([0, 2], jump_z=[10.0, 10.0])
    fired = rs.on_slice(sig, np.array([NIGHT, DAY]))
    assert fired[0].rows.tolist() == [0]
    # The contract evaluated outside the session kept its state: it fires once inside.
    fired = rs.on_slice(sig, np.array([NIGHT, NIGHT]))
    assert fired[0].rows.tolist() == [2]


def test_product_filter_accepts_products_and_instruments():
    rs = ruleset(market_spec("metals", "jump", 6.0, 3.0, products=("cu", "IF2601")))
    fired = rs.on_slice(signals([0, 1, 2], jump_z=[9.0, 9.0, 9.0]), np.full(3, DAY))
    assert fired[0].rows.tolist() == [1, 2]


def test_stale_with_per_contract_thresholds():
    rs = ruleset(market_spec("stale", "stale", 30.0, 5.0))
    rows = np.array([0, 1])
    ages = np.array([12.0, 12.0])
    scale = np.array([1.0, 30.0 / 10.0])  # cu: own threshold of 10 s
    fired = rs.on_values(0, rows, ages, scale)
    assert fired.rows.tolist() == [1] and fired.values.tolist() == [12.0]


def test_feed_silence_is_one_alert_and_only_in_session():
    state = SilenceState(market_spec("silent", "feed_silent", 10.0, 2.0, "critical"))
    assert not state.check(60.0, in_session=False)
    assert state.check(11.0, in_session=True)
    assert not state.check(30.0, in_session=True)  # the same silence: no second alert
    assert not state.check(0.5, in_session=True) and state.armed
    assert state.check(12.0, in_session=True) and state.episode == 2


def test_rules_are_validated():
    with pytest.raises(ValueError, match="kind"):
        market_spec("x", "moon", 1.0, 0.5)
    with pytest.raises(ValueError, match="unknown session"):
        market_spec("x", "jump", 6.0, 3.0, sessions=("lunch",))
    with pytest.raises(ValueError, match="rearm"):
        market_spec("x", "near_limit", 0.01, 0.005)  # below-threshold rule re-arms above
    with pytest.raises(ValueError, match="window_s"):
        MarketRuleSet([market_spec("v", "volatility", 1.0, 0.5, window_s=120)], (60, 300))
