"""Adaptive baselines: each key judged against its own history, with the baseline reported."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rules.adaptive import FlowBaseline, RateBaseline, VolatilityBaseline, robust_z, weekday_of


def test_volatility_baseline_learns_each_contracts_sigma() -> None:
    rng = np.random.default_rng(7)
    sigmas = np.array([0.001, 0.004])  # a quiet and a volatile contract, per bar
    base = VolatilityBaseline(halflife_bars=500, min_bars=30)
    rows = np.array([0, 1])
    price = np.array([3500.0, 800.0])
    base.update(rows, price)
    for _ in range(4000):
        price = price * np.exp(rng.normal(0, sigmas))
        base.update(rows, price)
    assert base.sigma(rows) == pytest.approx(sigmas, rel=0.15)
    # The same 1.2% move over 4 bars: 6σ for the quiet contract, 1.5σ for the volatile one.
    score, sigma = base.score(rows, price, price * math.exp(-0.012), window_bars=4)
    assert score == pytest.approx([0.012 / (0.002), 0.012 / 0.008], rel=0.2)
    assert sigma == pytest.approx(sigmas * 2, rel=0.15)


def test_volatility_baseline_skips_non_positive_prices_and_needs_history() -> None:
    base = VolatilityBaseline(min_bars=3)
    rows = np.array([0])
    assert np.isnan(base.sigma(rows)).all()
    for p in (10.0, 10.1, 10.0, 10.2):
        base.update(rows, np.array([p]))
    bars = int(base.bars[0])
    base.update(rows, np.array([-5.0]))  # through zero: no log return, σ unchanged
    assert int(base.bars[0]) == bars
    score, _ = base.score(rows, np.array([10.0]), np.array([-5.0]), 1)
    assert np.isnan(score).all()
    copy = VolatilityBaseline.from_state(base.state())
    assert np.array_equal(copy.variance, base.variance) and copy.last[0] == -5.0


def test_flow_baseline_robust_z_by_weekday() -> None:
    flows = FlowBaseline(depth=12, min_history=4)
    monday = weekday_of("20261130")
    assert monday == 0
    assert math.isnan(flows.score("A", monday, 1e6).score)  # no baseline yet
    for amount in (100_000, 120_000, 90_000, 110_000, 105_000, 5_000_000):  # one old outlier
        flows.observe("A", monday, amount)
    hit = flows.score("A", monday, 2_000_000)
    assert hit.score > 5 and hit.history == 6
    assert 100_000 <= hit.median <= 115_000  # the outlier does not move the baseline
    calm = flows.score("A", monday, 115_000)
    assert abs(calm.score) < 1
    assert math.isnan(flows.score("A", monday + 1, 2_000_000).score)  # Tuesday has no history
    again = FlowBaseline.from_state(flows.state())
    assert again.score("A", monday, 2_000_000).score == pytest.approx(hit.score)


def test_rate_baseline_scores_bursts_against_the_accounts_own_rate() -> None:
    rng = np.random.default_rng(3)
    rates = RateBaseline(halflife_windows=50, min_windows=10)
    rows = np.arange(3)
    lam = np.array([2.0, 20.0, 0.0])
    for _ in range(300):
        rates.observe(rows, rng.poisson(lam).astype(float))
    score, mean = rates.score(rows, np.array([30.0, 30.0, 2.0]))
    assert mean == pytest.approx(lam, abs=1.5)
    assert score[0] > 10  # 30 orders from an account that sends 2
    assert score[1] < 3  # 30 from one that sends 20 is ordinary
    assert score[2] <= 2  # two orders from a silent account are not an anomaly
    copy = RateBaseline.from_state(rates.state())
    assert np.allclose(copy.score(rows, np.array([30.0, 30.0, 2.0]))[0], score)


def test_robust_z() -> None:
    assert robust_z([1, 2, 3, 4, 100], 3) == pytest.approx(0.0)
    assert robust_z([1, 2, 3, 4, 100], 10) > 4
