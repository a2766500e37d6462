"""Any finite price is a price: market statistics through zero and below (WTI, 2020-04-20),
the non-positive price episode with its hysteresis, limits from a negative settlement, and the
backtest's tick readers keeping rows at or below zero."""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from app import backtest
from rules.contracts import limit_prices
from rules.market_signals import log_returns, nonpositive_events, relative_moves
from rules.market_stats import MarketStats, StatsParams

CL = Path(__file__).resolve().parents[3] / "shared" / "data" / "bars" / "other" / "CL=F_daily_yahoo_TimeSeriesProject.csv"  # fmt: skip
W = 60


def _feed(stats: MarketStats, prices: list[float], t0: float = 1_000_000.0) -> list:
    out = []
    for i, p in enumerate(prices):
        out += stats.update(np.array([0]), np.array([p]), np.array([t0 + i]))
    return out


def test_returns_across_a_nonpositive_price_are_left_out():
    r, ok = log_returns(
        np.array([10.0, -5.0, 0.0, -20.0, 12.0]), np.array([5.0, 10.0, -5.0, -10.0, -20.0])
    )
    assert ok.tolist() == [True, False, False, False, False]
    assert r[0] == pytest.approx(math.log(2)) and r[1:].tolist() == [0.0] * 4
    stats = MarketStats(
        StatsParams(vol_windows_s=(W, 300, 1800), spike_window_s=W, jump_baseline_s=300)
    )
    stats.add_rows(np.array([0.01]), np.array([0.1]))
    _feed(stats, [20.0, 18.0, 10.0, 0.0, -37.63, -10.0, 10.0, 12.0])
    # 7 tick-to-tick moves, of which 20→18, 18→10 and 10→12 have two positive prices
    assert stats.totals[W][0, 2] == 3
    expected = math.log(18 / 20) ** 2 + math.log(10 / 18) ** 2 + math.log(12 / 10) ** 2
    assert stats.totals[W][0, 1] == pytest.approx(expected)
    rv = stats.realized_vol(np.array([0]))
    assert all(np.isfinite(v).all() for v in rv.values())


def test_jump_moves_fall_back_to_the_simple_move_across_zero():
    got = relative_moves(
        np.array([11.0, -37.63, 5.0, 1.0, 3.0]), np.array([10.0, 18.27, -10.0, 0.0, np.nan])
    )
    assert got[0] == pytest.approx(math.log(1.1))
    assert got[1] == pytest.approx((-37.63 - 18.27) / 18.27)
    assert got[2] == pytest.approx(15.0 / 10.0)  # up from −10 to 5: a rise, +150%
    assert math.isnan(got[3]) and math.isnan(got[4])


def test_one_nonpositive_event_per_episode_with_hysteresis():
    stats = MarketStats()
    stats.add_rows(np.array([0.01]), np.array([0.1]))
    signals = _feed(stats, [18.0, 0.0, -37.63, 0.005, -1.0, 10.0, 12.0, -0.5, 3.0])
    events = nonpositive_events(signals, ["CL2005"], ["sc"], None)
    # 0.0 opens episode 1; −37.63, −1.0 stay in it (0.005 is not a tick above zero);
    # 10 ends it; −0.5 opens episode 2
    assert [(e.value, e.episode) for e in events] == [(0.0, 1), (-0.5, 2)]
    assert {e.rule_id for e in events} == {"market.nonpositive_price"}
    assert events[0].ts == signals[1].ts[0] and events[0].dimension == "market"


def test_limits_from_a_negative_settlement_keep_their_order():
    upper, lower = limit_prices(np.array([-37.63, 20.0]), 0.1, 0.01)
    assert upper.tolist() == [-33.87, 22.0] and lower.tolist() == [
        -41.39,
        18.0,
    ]  # on the tick, inside
    stats = MarketStats()
    stats.add_rows(np.array([0.01]), np.array([0.1]))
    [sig] = stats.update(
        np.array([0]), np.array([-40.0]), np.array([5.0]), pre_settlement=np.array([-37.63])
    )
    assert sig.near_limit[0] == pytest.approx((-40.0 - -41.39) / 40.0)


def test_backtest_reader_keeps_prices_at_and_below_zero(tmp_path):
    path = tmp_path / "sc2005_20200420.csv"
    path.write_text(
        "UpdateTime,BidPrice1,BidVolume1,AskPrice1,AskVolume1,LastPrice,Volume,OpenInterest\n"
        "09:00:00.000,1.5,1,1.6,1,1.5,1,10\n09:00:01.000,0,1,0.1,1,0,2,10\n"
        "09:00:02.000,-37.7,1,-37.6,1,-37.63,3,10\n09:00:03.000,1,1,1,1,nan,4,10\n"
    )
    ticks, info = backtest.load_ticks([path])
    assert ticks.last.tolist() == [1.5, 0.0, -37.63] and info["bad_rows"] == 1
    assert np.isnan(ticks.bid[1]) and ticks.bid[2] == -37.7  # bid 0 is "none"; −37.7 a price
    clean = tmp_path / "sc2005_20200421.csv"
    clean.write_text("09:00:00.000,-14,1,-13.9,1,-14,1,10\n09:00:01.000,0,1,1,1,0,2,10\n")
    ticks, info = backtest.load_ticks([clean])
    assert info.get("rows_fast") == 2 and ticks.last.tolist() == [-14.0, 0.0]


@pytest.mark.skipif(not CL.exists(), reason=f"real WTI daily bars not found at {CL}")
def test_wti_daily_closes_through_minus_37_63():
    with open(CL, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Close"] not in ("", "null")]
    day = [datetime.strptime(r["Date"], "%m/%d/%Y").strftime("%Y-%m-%d") for r in rows]
    close = np.array([float(r["Close"]) for r in rows])
    stats = MarketStats()  # each daily close as one tick a second: the statistics' arithmetic
    stats.add_rows(np.array([0.01]), np.array([1.0]))
    ts = 1_000_000.0 + np.arange(close.size)
    signals = stats.update(np.zeros(close.size, dtype=np.int64), close, ts)
    events = nonpositive_events(signals, ["CL"], ["cl"], None)
    days = [day[int(e.ts - ts[0])] for e in events]
    assert "2020-04-20" in days and events[days.index("2020-04-20")].value == pytest.approx(
        -37.63, abs=1e-5
    )
    assert len([d for d in days if d.startswith("2020-04")]) == 1
    assert all(np.isfinite(v).all() for v in stats.realized_vol(np.array([0])).values())
    assert stats.last[0] == pytest.approx(close[-1])
