"""Market statistics from every tick: bars, realized volatility, jumps, limits, spikes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rules.market_stats import TRADING_SECONDS_PER_YEAR, MarketStats, StatsParams

T0 = 1_767_000_000.0  # a whole minute (epoch seconds divisible by 60)


def feed(ms: MarketStats, rows, last, ts, **cols):
    return ms.update(np.asarray(rows), np.asarray(last, float), np.asarray(ts, float), **cols)


def two_contracts(params: StatsParams | None = None) -> MarketStats:
    ms = MarketStats(params or StatsParams(), capacity=1)  # capacity 1: growth is exercised
    ms.add_rows(np.array([1.0, 10.0]), np.array([0.05, 0.06]))
    return ms


def test_bars_see_every_tick_even_a_spike_inside_one_batch():
    ms = two_contracts()
    # One batch: contract 0 spikes to 3100 and back within it; contract 1 ticks around.
    ts = T0 + np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    feed(ms, [0, 1, 0, 0, 1, 0], [3000, 80000, 3100, 3001, 80010, 2999], ts)
    feed(ms, [0], [3005], [T0 + 61])  # the next minute closes the first bar
    first, current = ms.bars(0)
    assert first == {
        "start": T0, "open": 3000, "high": 3100, "low": 2999, "close": 2999, "volume": 0.0,
    }  # fmt: skip
    assert current["open"] == current["close"] == 3005 and current["start"] == T0 + 60
    assert ms.bars(1)[0]["high"] == 80010 and ms.ticks[:2].tolist() == [5, 2]


def test_one_batch_spanning_seconds_equals_the_same_ticks_in_separate_batches():
    rng = np.random.default_rng(3)
    n = 400
    rows = rng.integers(0, 2, n)
    ts = T0 + np.sort(rng.uniform(0, 20, n))
    price = np.where(rows == 0, 3000.0, 80000.0) * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    vol = np.cumsum(rng.integers(1, 10, n)).astype(float)
    whole, parts = two_contracts(), two_contracts()
    slices = feed(whole, rows, price, ts, volume=vol)
    for a in range(0, n, 37):
        feed(parts, rows[a : a + 37], price[a : a + 37], ts[a : a + 37], volume=vol[a : a + 37])
    assert len(slices) == len(np.unique(np.floor(ts)))
    for w in whole.p.vol_windows_s:
        np.testing.assert_allclose(whole.sums[w][:2], parts.sums[w][:2])
    assert whole.bars(0) == parts.bars(0) and whole.bars(1) == parts.bars(1)


def test_realized_volatility_per_window_from_tick_returns():
    ms = two_contracts(StatsParams(vol_windows_s=(60, 300, 1800)))
    rng = np.random.default_rng(5)
    n = 240  # one tick a second for four minutes
    ts = T0 + np.arange(n) + 0.5
    price = 3000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    sig = feed(ms, np.zeros(n, int), price, ts)[-1]
    r = np.diff(np.log(price))
    # 60 s window: 30 buckets of 2 s; at second T0+239 the window holds seconds 180..239.
    expect_60 = math.sqrt((r[179:] ** 2).sum() * TRADING_SECONDS_PER_YEAR / 60)
    expect_300 = math.sqrt((r**2).sum() * TRADING_SECONDS_PER_YEAR / 240)  # 240 s seen so far
    assert sig.rv[60][0] == pytest.approx(expect_60)
    assert sig.rv[300][0] == pytest.approx(expect_300)
    assert ms.realized_vol(np.array([0]))[1800][0] == pytest.approx(expect_300)
    # Another contract moves the clock on 80 s: contract 0's minute has expired, the rest not.
    feed(ms, [1], [80000.0], [ts[-1] + 80])
    later = ms.realized_vol(np.array([0]))
    assert later[60][0] == 0.0
    window_300 = r[(239 + 80) - 300 :]  # returns of the seconds still inside 300 s
    assert later[300][0] == pytest.approx(
        math.sqrt((window_300**2).sum() * TRADING_SECONDS_PER_YEAR / 300)
    )


def quiet_then(ms: MarketStats, seconds: int, moves: list[tuple[float, float]]):
    """`seconds` of 4 ticks a second with tiny moves, then (offset, price factor) ticks."""
    rng = np.random.default_rng(9)
    n = seconds * 4
    ts = T0 + np.arange(n) / 4
    price = 3000 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    feed(ms, np.zeros(n, int), price, ts)
    last = price[-1]
    return feed(
        ms, np.zeros(len(moves), int), [last * f for _, f in moves], [ts[-1] + o for o, _ in moves]
    )


def test_jump_beyond_k_sigma_over_n_seconds():
    sig = quiet_then(two_contracts(), 120, [(1.0, 1.02)])[-1]
    assert sig.jump_z[0] > 20 and sig.jump_move[0] == pytest.approx(math.log(1.02), rel=0.05)
    calm = quiet_then(two_contracts(), 120, [(1.0, 1.0005)])[-1]
    assert calm.jump_z[0] == 0.0  # below the minimum move (0.3%): not a jump


def test_a_jump_that_reverts_within_one_batch_is_still_seen():
    sigs = quiet_then(two_contracts(), 120, [(1.1, 1.02), (1.2, 1.0)])
    assert len(sigs) == 1 and sigs[0].jump_z[0] > 20  # same slice: the spike tick counted


def test_distance_to_limits_and_locked_state():
    ms = two_contracts(StatsParams(lock_s=3.0))
    up, lo = np.array([3150.0]), np.array([2850.0])
    sig = feed(ms, [0], [3120.0], [T0], upper=up, lower=lo, bid=[3119.0], ask=[3121.0])[0]
    assert sig.near_limit[0] == pytest.approx(30 / 3120) and not sig.locked[0]
    # At the limit with sellers still quoting: locked only after lock_s seconds there.
    sig = feed(ms, [0], [3150.0], [T0 + 1], upper=up, lower=lo, bid=[3149.0], ask=[3150.0])[0]
    assert sig.limit_side[0] == 1 and not sig.locked[0] and sig.near_limit[0] == 0.0
    sig = feed(ms, [0], [3150.0], [T0 + 4.5], upper=up, lower=lo, bid=[3149.0], ask=[3150.0])[0]
    assert sig.locked[0]
    # Limit-down with no bid at all (CTP writes none): locked at once.
    sig = feed(ms, [0], [2850.0], [T0 + 5], upper=up, lower=lo, bid=[np.nan], ask=[2850.0])[0]
    assert sig.limit_side[0] == -1 and sig.locked[0]
    sig = feed(ms, [0], [2900.0], [T0 + 6], upper=up, lower=lo, bid=[2899.0], ask=[2901.0])[0]
    assert not sig.locked[0] and sig.limit_side[0] == 0


def test_limits_from_previous_settlement_when_ticks_carry_none():
    ms = two_contracts()
    sig = feed(ms, [1], [80000.0], [T0], pre_settlement=[80000.0])[0]
    assert ms.upper[1] == 84800.0 and ms.lower[1] == 75200.0  # 6% limit, tick 10
    assert sig.near_limit[0] == pytest.approx(0.06)


def test_volume_and_open_interest_spikes():
    ms = two_contracts(StatsParams(spike_min_history_s=300))
    n = 900  # 15 minutes, one tick a second: 10 lots a tick, open interest drifting by ±1
    ts = T0 + np.arange(n) + 0.5
    vol = np.cumsum(np.full(n, 10.0))
    oi = 50_000 + np.cumsum(np.where(np.arange(n) % 2, 1.0, -1.0))
    sig = feed(ms, np.zeros(n, int), np.full(n, 3000.0), ts, volume=vol, open_interest=oi)[-1]
    assert sig.volume_ratio[0] == pytest.approx(1.0, rel=0.1)
    assert sig.oi_ratio[0] < 2
    # The next minute trades 20x and open interest jumps by 3,000 lots.
    m = 60
    ts2 = ts[-1] + 1 + np.arange(m)
    vol2 = vol[-1] + np.cumsum(np.full(m, 200.0))
    oi2 = oi[-1] + np.cumsum(np.full(m, 50.0))
    sig = feed(ms, np.zeros(m, int), np.full(m, 3000.0), ts2, volume=vol2, open_interest=oi2)[-1]
    assert sig.volume_ratio[0] > 15
    assert sig.oi_ratio[0] > 15


def test_params_are_validated():
    with pytest.raises(ValueError, match="multiple of buckets"):
        StatsParams(vol_windows_s=(45, 300, 1800))
    with pytest.raises(ValueError, match="jump_baseline_s"):
        StatsParams(jump_baseline_s=120)
