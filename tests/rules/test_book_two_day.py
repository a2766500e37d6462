"""Two trading days through the book's events, each figure worked by hand (to the cent).

Conventions of the examples: `by_date` (逐日盯市) unless said; broker margin = exchange rate +
the policy's markup; commission from the fee table of tests/rules/book_fixtures.py × the
policy's fee multiplier. Every settlement is an explicit record.
"""

from __future__ import annotations

import numpy as np
import pytest

from rules.account_math import FIGURES
from rules.book import AccountBook, AccountPolicy, BookError
from tests.rules.book_fixtures import fee_table

RB = "rb2601"
CENT = 0.005


@pytest.fixture(scope="module")
def table():
    return fee_table()


def _plain(obj):
    """NaN-free copy of a view for comparison (NaN != NaN; limits unknown are None)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return None if isinstance(obj, float) and obj != obj else obj


def _settle(book, day, nxt, prices):
    return book.apply_settlement(
        {"type": "settlement", "trading_day": day, "next_trading_day": nxt, "prices": prices,
         "ts": 0.0}
    )  # fmt: skip


def _trade(book, account, instrument, direction, offset, volume, price, **extra):
    return book.apply_trade({"account_id": account, "instrument": instrument,
                             "direction": direction, "offset": offset, "volume": volume,
                             "price": price, **extra})  # fmt: skip


def _shfe_book(table):
    book = AccountBook(
        table, policies=[AccountPolicy(match="t/*", markup=0.02, fee_multiplier=2.0)]
    )
    book.apply_snapshot({"account_id": "A", "group_path": "t/a", "pre_balance": 1_000_000})
    book.set_prices([RB], np.array([3500.0]), pre_settlement=np.array([3500.0]))
    return book


def _shfe_day_one(book):
    # open 10 @3500: 0.0001 × 3500 × 10 lots × 10 × 2 = 70.00 ; open 4 @3500: 28.00
    _trade(book, "A", RB, "long", "open", 10, 3500)
    _trade(book, "A", RB, "long", "open", 4, 3500)
    # SHFE: a plain close takes yesterday's lots only, and there are none yet.
    with pytest.raises(BookError, match="yesterday's"):
        _trade(book, "A", RB, "short", "close", 2, 3520)
    # close today 4 @3520: profit (3520 − 3500) × 4 × 10 = 800 ;
    # fee 0.0003 × 3520 × 4 × 10 × 2 = 84.48
    _trade(book, "A", RB, "short", "close_today", 4, 3520)
    book.apply_transfer("A", 50_000, deposit=True)
    book.set_prices([RB], np.array([3520.0]))


def test_shfe_close_today_commission_by_turnover_and_a_deposit_on_day_one(table):
    book = _shfe_book(table)
    _shfe_day_one(book)
    v = book.account_view("A")
    assert v["commission"] == pytest.approx(70 + 28 + 84.48, abs=CENT)
    assert v["close_profit"] == pytest.approx(800, abs=CENT)
    # 10 lots left at 3520: (3520 − 3500) × 10 × 10 = 2,000
    assert v["position_profit"] == pytest.approx(2_000, abs=CENT)
    # 1,000,000 + 50,000 + 800 + 2,000 − 182.48
    assert v["equity"] == pytest.approx(1_052_617.52, abs=CENT)
    assert v["margin"] == pytest.approx(3520 * 100 * 0.09, abs=CENT)  # 31,680
    assert v["exchange_margin"] == pytest.approx(3520 * 100 * 0.07, abs=CENT)  # 24,640
    assert v["available"] == pytest.approx(1_052_617.52 - 31_680, abs=CENT)
    assert v["risk_degree"] == pytest.approx(31_680 / 1_052_617.52, rel=1e-12)
    assert v["exchange_risk_degree"] == pytest.approx(24_640 / 1_052_617.52, rel=1e-12)


def _shfe_two_days(table):
    book = _shfe_book(table)
    _shfe_day_one(book)
    # rb settles unchanged at 3500: profit at settlement (3500 − 3500) × 100 = 0 ;
    # settled balance 1,000,000 + 50,000 + 800 + 0 − 182.48 = 1,050,617.52
    rows = _settle(book, "20251103", "20251104", {RB: 3500.0})
    assert rows.tolist() == [0]
    return book


def test_a_contract_settling_unchanged_still_rolls_todays_lots(table):
    book = _shfe_two_days(table)
    v = book.account_view("A")
    assert v["pre_balance"] == pytest.approx(1_050_617.52, abs=CENT)
    for name in ("deposit", "withdraw", "close_profit", "commission"):
        assert v[name] == 0.0
    rb = v["positions"][0]
    assert (rb["volume"], rb["today_volume"], rb["pre_settlement"]) == (10, 0, 3500)
    assert v["equity"] == pytest.approx(1_050_617.52, abs=CENT)  # marked at the settlement
    assert book.trading_day == "20251104"
    # limits of the new day from the settlement: 3500 × (1 ± 5%)
    assert (rb["upper_limit"], rb["lower_limit"]) == (3675.0, 3325.0)


def _shfe_day_two(book):
    book.set_prices([RB], np.array([3480.0]), pre_settlement=np.array([3500.0]))
    book.apply_transfer("A", 20_000, deposit=False)
    # plain close 3 @3490 takes yesterday's lots (SHFE): (3490 − 3500) × 3 × 10 = −300 ;
    # fee 0.0001 × 3490 × 3 × 10 × 2 = 20.94
    _trade(book, "A", RB, "short", "close", 3, 3490)


def test_shfe_day_two_withdrawal_and_close_of_yesterdays_lots(table):
    book = _shfe_two_days(table)
    _shfe_day_two(book)
    v = book.account_view("A")
    assert v["close_profit"] == pytest.approx(-300, abs=CENT)
    assert v["commission"] == pytest.approx(20.94, abs=CENT)
    assert v["position_profit"] == pytest.approx((3480 - 3500) * 70, abs=CENT)  # −1,400
    # 1,050,617.52 − 20,000 − 300 − 1,400 − 20.94
    assert v["equity"] == pytest.approx(1_028_896.58, abs=CENT)
    assert v["margin"] == pytest.approx(3480 * 70 * 0.09, abs=CENT)  # 21,924
    assert v["exchange_margin"] == pytest.approx(3480 * 70 * 0.07, abs=CENT)  # 17,052
    assert v["available"] == pytest.approx(1_028_896.58 - 21_924, abs=CENT)
    assert v["risk_degree"] == pytest.approx(21_924 / 1_028_896.58, rel=1e-12)


def test_two_days_of_events_equal_a_fresh_snapshot_of_day_two(table):
    """The done-when of issue 11: the book fed only through events equals the book fed the
    day-two snapshot (pre-balance = the settled balance, every lot yesterday's)."""
    by_events = _shfe_two_days(table)
    _shfe_day_two(by_events)
    fresh = AccountBook(
        table, policies=[AccountPolicy(match="t/*", markup=0.02, fee_multiplier=2.0)]
    )
    fresh.apply_snapshot({
        "account_id": "A", "group_path": "t/a", "pre_balance": 1_050_617.52,
        "positions": [{"instrument": RB, "direction": "long", "volume": 10, "today_volume": 0,
                       "open_price": 3500}],
    })  # fmt: skip
    _shfe_day_two(fresh)
    a, b = by_events.mark(), fresh.mark()
    for name in FIGURES:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, err_msg=name)
    limits = ("upper_limit", "lower_limit")  # the event book derived them from the settlement
    strip = [{k: v for k, v in p.items() if k not in limits} for p in by_events.positions_of("A")]
    assert _plain(strip) == _plain([{k: v for k, v in p.items() if k not in limits}
                                    for p in fresh.positions_of("A")])  # fmt: skip


def test_by_trade_pre_balance_excludes_floating_profit(table):
    book = AccountBook(table, policies=[AccountPolicy(match="bt/*", cost="by_trade")])
    for account, group in (("D", "d/x"), ("T", "bt/x")):
        book.apply_snapshot({"account_id": account, "group_path": group, "pre_balance": 100_000})
        _trade(book, account, RB, "long", "open", 10, 3500, commission=0.0)
    _settle(book, "20251103", "20251104", {RB: 3550.0})
    d, t = book.account_view("D"), book.account_view("T")
    # 逐日: 100,000 + (3550 − 3500) × 100 ; 逐笔: 100,000 (floating 5,000 stays on the lots)
    assert d["pre_balance"] == pytest.approx(105_000, abs=CENT)
    assert t["pre_balance"] == pytest.approx(100_000, abs=CENT)
    book.set_prices([RB], np.array([3560.0]))
    d, t = book.account_view("D"), book.account_view("T")
    assert d["position_profit"] == pytest.approx(1_000, abs=CENT)  # vs settlement 3550
    assert t["position_profit"] == pytest.approx(6_000, abs=CENT)  # vs open 3500
    assert d["equity"] == pytest.approx(t["equity"], abs=CENT) == pytest.approx(106_000, abs=CENT)


def test_dce_commission_by_volume_first_in_first_out(table):
    book = AccountBook(table)
    book.apply_snapshot({"account_id": "M", "pre_balance": 200_000})
    _trade(book, "M", "m2601", "long", "open", 5, 3000)  # 1.5 × 5 = 7.50
    _settle(book, "20251103", "20251104", {"m2601": 3010.0})
    # settled: 200,000 + (3010 − 3000) × 5 × 10 − 7.50 = 200,492.50
    assert book.account_view("M")["pre_balance"] == pytest.approx(200_492.50, abs=CENT)
    _trade(book, "M", "m2601", "long", "open", 2, 3015)  # 3.00
    # DCE plain close, close-today dearer: yesterday's first. 4 @3020 from yesterday's 5:
    # profit (3020 − 3010) × 4 × 10 = 400 ; fee 1.5 × 4 = 6.00
    _trade(book, "M", "m2601", "short", "close", 4, 3020)
    book.set_prices(["m2601"], np.array([3020.0]))
    v = book.account_view("M")
    pos = v["positions"][0]
    assert (pos["volume"], pos["today_volume"]) == (3, 2)
    assert v["commission"] == pytest.approx(9.00, abs=CENT)
    assert v["close_profit"] == pytest.approx(400, abs=CENT)
    # 1 yesterday's lot (3020 − 3010) × 10 + 2 today's (3020 − 3015) × 2 × 10 = 100 + 100
    assert v["position_profit"] == pytest.approx(200, abs=CENT)
    assert v["equity"] == pytest.approx(200_492.50 + 400 + 200 - 9, abs=CENT)
    assert v["margin"] == pytest.approx(3020 * 3 * 10 * 0.08, abs=CENT)  # 7,248
    assert v["available"] == pytest.approx(201_083.50 - 7_248, abs=CENT)
    assert v["risk_degree"] == pytest.approx(7_248 / 201_083.50, rel=1e-12)


def test_czce_close_today_fee_waiver_closes_todays_lots_first(table):
    book = AccountBook(table)
    book.apply_snapshot({"account_id": "S", "pre_balance": 100_000})
    _trade(book, "S", "SR601", "long", "open", 5, 6000)  # 3 × 5 = 15
    _settle(book, "20251103", "20251104", {"SR601": 6010.0})
    _trade(book, "S", "SR601", "long", "open", 2, 6020)  # 6
    # close 3 @6030: today's 2 first (fee waived), then 1 of yesterday's (fee 3):
    # profit (6030 − 6020) × 2 × 10 + (6030 − 6010) × 1 × 10 = 200 + 200
    _trade(book, "S", "SR601", "short", "close_today", 3, 6030)  # close_today = close off SHFE
    book.set_prices(["SR601"], np.array([6030.0]))
    v = book.account_view("S")
    assert (v["positions"][0]["volume"], v["positions"][0]["today_volume"]) == (4, 0)
    assert v["close_profit"] == pytest.approx(400, abs=CENT)
    assert v["commission"] == pytest.approx(9, abs=CENT)
    assert v["position_profit"] == pytest.approx((6030 - 6010) * 4 * 10, abs=CENT)  # 800
    # pre 100,000 + 100 × 5 − 15 = 100,485 ; + 400 + 800 − 9
    assert v["equity"] == pytest.approx(101_676, abs=CENT)
    assert v["margin"] == pytest.approx(6030 * 40 * 0.06, abs=CENT)  # 14,472


def test_cffex_hedge_across_index_products_is_charged_on_the_larger_side(table):
    policies = [AccountPolicy(match="off/*", single_side="off")]
    book = AccountBook(table, policies=policies)
    for account, group in (("H", "on/x"), ("B", "off/x")):
        book.apply_snapshot({"account_id": account, "group_path": group, "pre_balance": 1_000_000,
                             "positions": [
            {"instrument": "IF2512", "direction": "long", "volume": 2, "open_price": 4000},
            {"instrument": "IC2512", "direction": "short", "volume": 1, "open_price": 6000}]})  # fmt: skip
    book.set_prices(["IF2512", "IC2512"], np.array([4000.0, 6000.0]),
                    pre_settlement=np.array([4000.0, 6000.0]))  # fmt: skip
    h, b = book.account_view("H"), book.account_view("B")
    # IF long 4000 × 300 × 2 × 12% = 288,000 ; IC short 6000 × 200 × 14% = 168,000
    assert h["margin"] == pytest.approx(288_000, abs=CENT)
    assert h["exchange_margin"] == pytest.approx(288_000, abs=CENT)
    assert b["margin"] == pytest.approx(456_000, abs=CENT)
    assert h["available"] == pytest.approx(712_000, abs=CENT)
    assert h["risk_degree"] == pytest.approx(0.288, rel=1e-12)
    charged = {p["instrument"]: p["margin_charged"] for p in h["positions"]}
    assert charged == {"IF2512": True, "IC2512": False}
    # Day two: IC rallies to 8,000 -> IC margin 224,000 < IF still: one side's loss only.
    _settle(book, "20251103", "20251104", {"IF2512": 4000.0, "IC2512": 6000.0})
    book.set_prices(["IF2512", "IC2512"], np.array([4000.0, 11_000.0]))
    h = book.account_view("H")
    # IC short margin 11,000 × 200 × 14% = 308,000 > IF 288,000: the short side now
    assert h["margin"] == pytest.approx(308_000, abs=CENT)
    assert h["position_profit"] == pytest.approx(-(11_000 - 6000) * 200, abs=CENT)


def test_liquidation_distance_when_the_larger_side_changes_on_the_way(table):
    book = AccountBook(table)
    book.apply_snapshot({"account_id": "L", "pre_balance": 120_000, "positions": [
        {"instrument": "cu2601", "direction": "long", "volume": 3, "open_price": 80_000},
        {"instrument": "cu2602", "direction": "short", "volume": 3, "open_price": 79_000}]})  # fmt: skip
    book.set_prices(["cu2601", "cu2602"], np.array([80_000.0, 79_000.0]),
                    pre_settlement=np.array([80_000.0, 79_000.0]))  # fmt: skip
    v = book.account_view("L")
    assert v["margin"] == pytest.approx(96_000, abs=CENT)  # long 80,000 × 15 × 8% > 94,800
    # Against both legs by x: long margin 96,000(1 − x), short 94,800(1 + x) swap at x = 0.63%;
    # equity 120,000 − 2,385,000 x meets the short side at x = 25,200 / 2,479,800.
    x = 25_200 / 2_479_800
    assert v["liquidation_distance"] == pytest.approx(x, rel=1e-12)
    book.set_prices(["cu2601", "cu2602"], np.array([80_000 * (1 - x), 79_000 * (1 + x)]))
    assert book.account_view("L")["risk_degree"] == pytest.approx(1.0, rel=1e-12)


def test_settlement_refuses_a_held_contract_without_a_price(table):
    book = _shfe_book(table)
    _shfe_day_one(book)
    before = book.account_view("A")
    with pytest.raises(BookError, match=RB):
        _settle(book, "20251103", "20251104", {"cu2601": 80_000.0})
    assert _plain(book.account_view("A")) == _plain(before)
    _settle(book, "20251103", "20251104", {RB: 3500.0})
    with pytest.raises(BookError, match="trading day 20251104"):
        _settle(book, "20251103", "20251104", {RB: 3500.0})


def test_gfex_lock_by_volume_fees_across_the_settlement(table):
    book = AccountBook(table)
    book.apply_snapshot({"account_id": "G", "pre_balance": 100_000})
    # lock: long 2 si2601 @12,000, short 1 si2603 @12,100; fee 5 per lot → 15
    _trade(book, "G", "si2601", "long", "open", 2, 12_000)
    _trade(book, "G", "si2603", "short", "open", 1, 12_100)
    book.set_prices(["si2601", "si2603"], np.array([12_050.0, 12_080.0]))
    v = book.account_view("G")
    # long 12,050 × 2 × 5 × 11% = 13,255 > short 12,080 × 5 × 11% = 6,644 → 13,255
    assert v["margin"] == pytest.approx(13_255, abs=CENT)
    # profit (12,050 − 12,000) × 10 − (12,080 − 12,100) × 5 = 500 + 100
    assert v["equity"] == pytest.approx(100_000 + 600 - 15, abs=CENT)
    _settle(book, "20251103", "20251104", {"si2601": 12_040.0, "si2603": 12_090.0})
    # settled: 100,000 + (12,040 − 12,000) × 10 + (12,100 − 12,090) × 5 − 15 = 100,435
    assert book.account_view("G")["pre_balance"] == pytest.approx(100_435, abs=CENT)
    book.apply_transfer("G", 10_000, deposit=True)
    # day two: close the long 2 (GFEX, yesterday's lots): (12,060 − 12,040) × 10 = 200 ; fee 10
    _trade(book, "G", "si2601", "short", "close", 2, 12_060)
    book.set_prices(["si2601", "si2603"], np.array([12_060.0, 12_070.0]))
    v = book.account_view("G")
    assert v["close_profit"] == pytest.approx(200, abs=CENT)
    assert v["position_profit"] == pytest.approx((12_090 - 12_070) * 5, abs=CENT)  # 100
    assert v["equity"] == pytest.approx(100_435 + 10_000 + 200 + 100 - 10, abs=CENT)
    assert v["margin"] == pytest.approx(12_070 * 5 * 0.11, abs=CENT)  # only the short: 6,638.50
    assert v["available"] == pytest.approx(110_725 - 6_638.50, abs=CENT)
    assert v["risk_degree"] == pytest.approx(6_638.50 / 110_725, rel=1e-12)
