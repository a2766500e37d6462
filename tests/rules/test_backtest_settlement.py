"""Multi-day backtests settle between trading days: the day boundary is found in data time
(night trading belongs to the next day), the settlement carries each contract's last price of
the day, and the screened replay still equals every step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import backtest
from rules.engine.backtest import Backtest, Ticks, coalesce, settlement_steps
from tests.rules.test_rule_backtest import ACCOUNT_RULES, TABLE, random_book, synthetic_ticks

MONDAY_1400 = 1767592800.0  # 2026-01-05 14:00 Beijing
TUESDAY_NIGHT = MONDAY_1400 + 7 * 3600  # 21:00 Monday: Tuesday's night session


def two_days(seconds: int = 900) -> Ticks:
    a, b = (
        synthetic_ticks(MONDAY_1400, seconds, seed=3),
        synthetic_ticks(TUESDAY_NIGHT, seconds, seed=4),
    )
    cat = {f: np.concatenate([getattr(a, f), getattr(b, f)]) for f in
           ("idx", "ts", "last", "volume", "open_interest", "bid", "ask", "upper", "lower", "pre_settlement")}  # fmt: skip
    return Ticks(a.instruments, **cat)


def test_settlement_steps_at_the_trading_day_boundary():
    book, _ = random_book(5)
    steps = coalesce(two_days(60), book, 0.5)
    at = settlement_steps(steps)
    assert len(at) == 1
    [(k, (settled, nxt, ts))] = at.items()
    assert (settled, nxt) == ("20260105", "20260106")
    assert steps.ts[k - 1] == ts < MONDAY_1400 + 3600 <= TUESDAY_NIGHT <= steps.ts[k]
    one_day = coalesce(synthetic_ticks(MONDAY_1400, 60), book, 0.5)
    assert settlement_steps(one_day) == {}


def test_multi_day_replay_settles_once_at_the_days_last_prices():
    ticks = two_days()
    runs = {}
    for screen in (True, False):
        book = random_book(200)[0]
        bt = Backtest(book, ACCOUNT_RULES, TABLE, screen=screen, block_steps=32)
        runs[screen] = (bt.run(ticks), bt)
    (screened, bt), (stepwise, _) = runs[True], runs[False]
    assert screened.alerts == stepwise.alerts and screened.alerts
    assert screened.stats["settlements"] == ["20260105"]
    [rec] = bt.settlements
    monday = ticks.ts < TUESDAY_NIGHT
    for i, name in enumerate(ticks.instruments):
        last_monday = ticks.last[monday & (ticks.idx == i)][-1]
        assert rec["prices"][name] == last_monday, name


IF_HOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "ticks" / "CFFEX.IF_HOT_ticks_20210104-20210118_wtpy.csv.gz"  # fmt: skip


@pytest.mark.skipif(not IF_HOT.exists(), reason=f"real multi-day IF ticks not found at {IF_HOT}")
def test_fengkong_backtest_settles_each_day_of_a_multi_day_file(tmp_path):
    accounts, positions = tmp_path / "accounts.csv", tmp_path / "positions.csv"
    accounts.write_text("account_id,group_path,pre_balance\nL,g/s/u,900000\nS,g/s/u,900000\n")
    positions.write_text("account_id,contract,direction,volume,cost_price\n"
                         "L,IF2101,long,4,5200\nS,IF2102,short,4,5200\n")  # fmt: skip
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nid = "warn"\nthreshold = 0.8\nrearm = 0.75\n')
    # IF2101 expires on 2021-01-15: the book still has IF2102 ticks on the 18th to settle the 15th
    summary = backtest.run([IF_HOT], accounts, positions, [rules], tmp_path / "out", parallel=False)
    assert summary["inputs"]["settlements"] == ["20210104", "20210105", "20210106", "20210107",
                                                "20210108", "20210111", "20210112", "20210113",
                                                "20210114", "20210115"]  # fmt: skip
