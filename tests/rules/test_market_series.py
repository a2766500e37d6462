"""The backtest's whole-day market statistics (rules.market_series) are the live fold's
(rules.market_stats, second by second) bit for bit, and the backtest's vectorized market rules
raise exactly the events the step-wise path raises — on a generated day with gaps longer than
every window, sub-second bursts, jumps, limit touches and locks, missing limit prices, volume
restarts and prices at or below zero; and on the real five-contract day when it is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infra.specs import load_contract_table
from rules.engine.backtest_market import MarketReplay
from rules.engine.backtest_steps import Ticks
from rules.engine.kinds.market import market_spec
from rules.market_series import series
from rules.market_stats import MarketStats, StatsParams
from rules.sessions import SessionCalendar

TABLE = load_contract_table()
SELECTED = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "ticks" / "cn_20171113_selected"
)
NAMES = ["rb2601", "cu2601", "i2601", "au2602", "m2601", "zz9999"]  # the last has no spec
T0 = 1_763_000_000.0  # a weekday morning (Beijing), data time


def generated_day(seed: int = 3) -> Ticks:
    """Six contracts over ~2.5 hours of data with a 40-minute gap (longer than every window),
    ticks at 0.1–3 s with bursts of several in one second; jumps, a run to the upper limit
    and back, NaN limits on one contract (previous settlement only), a volume restart and an
    episode of prices at or below zero."""
    rng = np.random.default_rng(seed)
    base = np.array([3000.0, 80000.0, 800.0, 600.0, 3500.0, 100.0])
    times = np.concatenate([T0 + np.cumsum(rng.exponential(0.25, 22_000)),
                            T0 + 8000 + np.cumsum(rng.exponential(0.3, 14_000))])  # fmt: skip
    n = times.shape[0]
    idx = rng.integers(0, len(NAMES), n).astype(np.int64)
    level = np.cumsum(rng.normal(0, 0.0004, (n, len(NAMES))), axis=0)
    last = base[idx] * np.exp(level[np.arange(n), idx])
    for at in (3000, 9000, 25_000):  # jumps of 3% that stay
        last[at:] *= np.where(idx[at:] == 0, 1.03, 1.0)
    pre = base[idx].copy()
    upper, lower = pre * 1.05, pre * 0.95
    up_run = (idx == 1) & (np.arange(n) > 12_000) & (np.arange(n) < 12_400)
    last[up_run] = upper[up_run]  # at the upper limit for a while: locked after lock_s
    upper[idx == 2], lower[idx == 2] = np.nan, np.nan  # only the previous settlement
    neg = (idx == 4) & (np.arange(n) > 15_000) & (np.arange(n) < 15_300)
    last[neg] = rng.choice([-1.0, 0.0, 0.4, 2.0], int(neg.sum()))  # ≤ 0 and hovering near it
    volume = np.zeros(n)
    for c in range(len(NAMES)):
        sel = idx == c
        volume[sel] = np.cumsum(rng.integers(0, 30, int(sel.sum())))
    volume[(idx == 3) & (np.arange(n) > 23_000)] -= 1e6  # a restart (negative: counts anew)
    volume = np.abs(volume)
    oi = 1e5 + np.cumsum(rng.integers(-20, 21, n)).astype(float)
    bid, ask = last - 1.0, last + 1.0
    ask[up_run] = np.nan  # no ask at the upper limit: the book shows the lock
    return Ticks(NAMES, idx, times, last, volume, oi, bid, ask, upper, lower, pre)


def fold(ticks: Ticks, rows: np.ndarray, ok: np.ndarray, sizes, limits, params) -> dict:
    """The live path: MarketStats over batches of 100 data seconds, slice signals by
    (row, second)."""
    stats = MarketStats(params)
    stats.add_rows(np.array(sizes), np.array(limits))
    seconds = np.floor(ticks.ts[ok])
    cuts = np.flatnonzero(np.diff(seconds)) + 1
    bounds = [0, *cuts[100::100].tolist(), ok.size]
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            sel = ok[a:b]
            for sig in stats.update(rows[sel], ticks.last[sel], ticks.ts[sel],
                                    volume=ticks.volume[sel], open_interest=ticks.open_interest[sel],
                                    bid=ticks.bid[sel], ask=ticks.ask[sel], upper=ticks.upper[sel],
                                    lower=ticks.lower[sel], pre_settlement=ticks.pre_settlement[sel]):  # fmt: skip
                for j, row in enumerate(sig.rows.tolist()):
                    out[(row, sig.second)] = (sig, j)
    return out


FIELDS = ("ts", "last", "jump_z", "near_limit", "limit_side", "locked", "volume_ratio",
          "oi_ratio", "nonpositive", "nonpositive_episode")  # fmt: skip


def test_series_equals_the_live_fold_bit_for_bit():
    ticks = generated_day()
    params = StatsParams()
    specs = [TABLE.spec(n) for n in NAMES[:-1]]
    row_of = np.array([0, 1, 2, 3, 4, -1])
    rows = row_of[ticks.idx]
    ok = np.flatnonzero(rows >= 0)
    sizes, limits = [s.tick_size for s in specs], [s.limit_rate for s in specs]
    live = fold(ticks, rows, ok, sizes, limits, params)
    with np.errstate(invalid="ignore", divide="ignore"):
        got = series(rows, ticks.last, ticks.ts, ticks.volume, ticks.open_interest, ticks.bid,
                     ticks.ask, ticks.upper, ticks.lower, ticks.pre_settlement,
                     np.array(sizes), np.array(limits), params, take=ok)  # fmt: skip
    assert got.rows.shape[0] == len(live)
    keys = list(zip(got.rows.tolist(), got.sec.tolist(), strict=True))
    assert set(keys) == set(live)
    picks = [live[k] for k in keys]
    for name in FIELDS:
        want = np.array([getattr(sig, name)[j] for sig, j in picks])
        np.testing.assert_array_equal(getattr(got, name), want, err_msg=name, strict=False)
    for w in params.vol_windows_s:
        want = np.array([sig.rv[w][j] for sig, j in picks])
        np.testing.assert_array_equal(got.rv[w], want, err_msg=f"rv {w}")
    # the day has what it is meant to have, so the comparison is not of empty columns
    assert got.locked.any() and (got.limit_side == 1).any() and got.nonpositive.any()
    assert (got.jump_z > 6).any() and np.isfinite(got.near_limit[got.rows == 2]).any()
    assert (got.volume_ratio > 0).any() and (got.oi_ratio > 0).any()


def market_rules():
    return [
        market_spec("vol.1m", "volatility", 0.3, 0.2, window_s=60),
        market_spec("vol.5m.day", "volatility", 0.2, 0.1, window_s=300, sessions=("day",)),
        market_spec("jump", "jump", 6.0, 3.0),
        market_spec("near", "near_limit", 0.01, 0.02, products=("cu", "i")),
        market_spec("locked", "limit_locked", 0.5, 0.5),
        market_spec("vol_spike", "volume_spike", 2.0, 1.5),
        market_spec("oi_spike", "oi_spike", 2.0, 1.5),
    ]


def _events(ticks: Ticks, stepwise: bool) -> list:
    calendar = SessionCalendar.from_table(TABLE)
    replay = MarketReplay(market_rules(), TABLE, calendar, StatsParams(), stepwise=stepwise)
    return sorted(replay.run(ticks), key=lambda e: (e.ts, e.dimension, e.rule_id, e.key))


def test_vectorized_market_rules_raise_the_stepwise_events():
    ticks = generated_day()
    fast, slow = _events(ticks, False), _events(ticks, True)
    assert fast == slow
    kinds = {e.rule_id for e in fast}
    assert {"vol.1m", "jump", "near", "locked", "market.nonpositive_price"} <= kinds
    assert max(e.episode for e in fast) > 1  # re-armed and fired again


def test_time_going_back_falls_back_to_the_fold():
    ticks = generated_day()
    ticks.ts[5000], ticks.ts[5001] = ticks.ts[5001] + 2.0, ticks.ts[5000]  # one late tick
    assert _events(ticks, False) == _events(ticks, True)


@pytest.mark.skipif(not SELECTED.exists(), reason=f"real tick data not found at {SELECTED}")
def test_vectorized_market_rules_on_real_ticks():
    from gateways.market.tick_files import load_ticks

    ticks, _ = load_ticks([SELECTED])
    fast, slow = _events(ticks, False), _events(ticks, True)
    assert fast == slow and len(fast) > 0
