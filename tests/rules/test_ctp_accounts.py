"""CTP-exact account figures: cost conventions, today's/yesterday's lots, margin price types,
exchange vs broker margin, liquidation-line distance — each against a case worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from infra.specs import load_contract_table
from rules.book import AccountBook, AccountPolicy, BookError

RB, CU = "rb2601", "cu2601"


@pytest.fixture(scope="module")
def table():
    return load_contract_table()


def _book(table, **policy):
    book = AccountBook(table, policies=[AccountPolicy(match="test/*", **policy)])
    # rb: 8 lots from yesterday opened at 3000, 2 opened today at 3050 (average 3010).
    # cu: 1 short lot from yesterday opened at 80,000.
    book.apply_snapshot(
        {
            "account_id": "X",
            "group_path": "test/u1",
            "pre_balance": 500_000,
            "positions": [
                {
                    "instrument": RB,
                    "direction": "long",
                    "volume": 10,
                    "today_volume": 2,
                    "open_price": 3010,
                    "today_open_price": 3050,
                },
                {"instrument": CU, "direction": "short", "volume": 1, "open_price": 80_000},
            ],
        }
    )
    book.set_prices(
        [RB, CU], np.array([3100.0, 81_000.0]), pre_settlement=np.array([3020.0, 79_000.0])
    )
    return book


def test_by_date_marks_yesterdays_lots_from_previous_settlement(table):
    view = _book(table, cost="by_date", margin_price="last", markup=0.02).account_view("X")
    # rb: (3100−3020)×8×10 + (3100−3050)×2×10 = 6,400 + 1,000 ; cu short: −(81,000−79,000)×5
    assert view["position_profit"] == pytest.approx(7_400 - 10_000)
    # broker margin at 7%+2% on the last price: 3100×100×9% + 81,000×5×(8%+2%)
    assert view["margin"] == pytest.approx(27_900 + 40_500)
    assert view["exchange_margin"] == pytest.approx(21_700 + 32_400)
    equity = 500_000 - 2_600
    assert view["equity"] == pytest.approx(equity)
    assert view["risk_degree"] == pytest.approx(68_400 / equity)
    assert view["exchange_risk_degree"] == pytest.approx(54_100 / equity)


def test_by_trade_marks_every_lot_from_its_open_price(table):
    view = _book(table, cost="by_trade").account_view("X")
    # rb: (3100−3010)×10×10 = 9,000 ; cu: −(81,000−80,000)×5 = −5,000
    assert view["position_profit"] == pytest.approx(4_000)
    assert view["cost_convention"] == "by_trade"


@pytest.mark.parametrize(
    "margin_price, rb_price, cu_price",
    [
        ("pre_settlement", 3020.0, 79_000.0),
        ("average", 3010.0, 80_000.0),
        (
            "open",
            (8 * 3020 + 2 * 3050) / 10,
            79_000.0,
        ),  # yesterday's at settlement, today's at open
        ("last", 3100.0, 81_000.0),
    ],
)
def test_margin_price_types(table, margin_price, rb_price, cu_price):
    view = _book(table, margin_price=margin_price).account_view("X")
    assert view["margin"] == pytest.approx(rb_price * 100 * 0.07 + cu_price * 5 * 0.08)
    assert view["margin_price"] == margin_price


def test_partial_close_of_yesterdays_lots_by_date_and_by_trade(table):
    trade = {
        "account_id": "X",
        "instrument": RB,
        "direction": "short",
        "offset": "close",
        "volume": 3,
        "price": 3080,
        "commission": 9,
    }
    by_date = _book(table, cost="by_date")
    by_date.apply_trade(trade)
    view = by_date.account_view("X")
    assert view["close_profit"] == pytest.approx((3080 - 3020) * 3 * 10)
    rb = next(p for p in view["positions"] if p["instrument"] == RB)
    assert (rb["volume"], rb["today_volume"]) == (7, 2)  # yesterday's lots close first
    by_trade = _book(table, cost="by_trade")
    by_trade.apply_trade(trade)
    assert by_trade.account_view("X")["close_profit"] == pytest.approx((3080 - 3010) * 3 * 10)
    assert by_trade.account_view("X")["commission"] == pytest.approx(9)


def test_close_today_takes_only_todays_lots(table):
    book = _book(table)
    with pytest.raises(BookError, match="today's lots"):
        book.apply_trade(
            {
                "account_id": "X",
                "instrument": RB,
                "direction": "short",
                "offset": "close_today",
                "volume": 3,
                "price": 3100,
            }
        )
    book.apply_trade(
        {
            "account_id": "X",
            "instrument": RB,
            "direction": "short",
            "offset": "close_today",
            "volume": 2,
            "price": 3100,
        }
    )
    view = book.account_view("X")
    assert view["close_profit"] == pytest.approx((3100 - 3050) * 2 * 10)
    rb = next(p for p in view["positions"] if p["instrument"] == RB)
    assert (rb["volume"], rb["today_volume"]) == (8, 0)


@pytest.mark.parametrize(
    "direction, distance", [("long", 30_000 / 270_000), ("short", 30_000 / 330_000)]
)
def test_liquidation_distance_uniform_and_per_contract(table, direction, distance):
    book = AccountBook(table, margin_markup=0.03)  # 7% + 3% = 10%
    book.apply_snapshot(
        {
            "account_id": "L",
            "pre_balance": 60_000,
            "positions": [
                {"instrument": RB, "direction": direction, "volume": 10, "open_price": 3000}
            ],
        }
    )
    book.set_prices([RB], np.array([3000.0]))
    view = book.account_view("L")
    assert view["risk_degree"] == pytest.approx(0.5)
    assert view["liquidation_distance"] == pytest.approx(distance)
    assert view["contract_distances"][0]["distance"] == pytest.approx(distance)
    # Moving the price by that distance against the position puts risk degree at 100%.
    moved = 3000 * (1 - distance if direction == "long" else 1 + distance)
    book.set_prices([RB], np.array([moved]))
    assert book.account_view("L")["risk_degree"] == pytest.approx(1.0)
    assert book.account_view("L")["liquidation_distance"] == pytest.approx(0.0, abs=1e-9)


def test_limit_locked_position_is_flagged(table):
    book = AccountBook(table)
    book.apply_snapshot(
        {
            "account_id": "K",
            "pre_balance": 60_000,
            "positions": [
                {"instrument": RB, "direction": "long", "volume": 10, "open_price": 3000}
            ],
        }
    )
    book.set_prices(
        [RB], np.array([2850.0]), upper_limit=np.array([3150.0]), lower_limit=np.array([2850.0])
    )
    book.mark()
    assert book.limit_locked_accounts().tolist() == [True]
    assert book.account_view("K")["contract_distances"][0]["limit_locked"] is True


def test_bad_snapshot_changes_nothing(table):
    book = _book(table)

    def holdings():
        return [
            (p["instrument"], p["volume"], p["open_price"])
            for p in book.account_view("X")["positions"]
        ]

    before = holdings()
    with pytest.raises(KeyError):
        book.apply_snapshot(
            {
                "account_id": "X",
                "pre_balance": 1,
                "positions": [
                    {"instrument": "zz2601", "direction": "long", "volume": 1, "open_price": 1}
                ],
            }
        )
    assert holdings() == before


def test_an_intraday_previous_settlement_correction_never_rolls_lots(table):
    # Behaviour changed deliberately (issue 11): only a settlement record rolls the trading
    # day; a corrected previous settlement only reprices yesterday's lots.
    book = _book(table)  # rb: 10 lots, 2 of them today's; previous settlement 3020
    book.set_prices(
        [RB, CU], np.array([3100.0, 81_000.0]), pre_settlement=np.array([3090.0, 80_500.0])
    )
    view = book.account_view("X")
    rb = next(p for p in view["positions"] if p["instrument"] == RB)
    assert rb["today_volume"] == 2
    # yesterday's 8 lots now cost 3090, today's 2 still their open 3050:
    # (3100 − 3090) × 8 × 10 + (3100 − 3050) × 2 × 10 = 800 + 1,000
    assert rb["position_profit"] == pytest.approx(1_800)


def test_accounts_with_an_unpriced_contract_are_known(table):
    book = AccountBook(table)
    book.apply_snapshot(
        {
            "account_id": "P",
            "pre_balance": 1e5,
            "positions": [
                {"instrument": RB, "direction": "long", "volume": 1, "open_price": 3000},
                {"instrument": CU, "direction": "long", "volume": 1, "open_price": 80_000},
            ],
        }
    )
    book.apply_snapshot(
        {
            "account_id": "Q",
            "pre_balance": 1e5,
            "positions": [{"instrument": RB, "direction": "long", "volume": 1, "open_price": 3000}],
        }
    )
    book.set_prices([RB], np.array([3000.0]))
    assert book.unpriced_accounts().tolist() == [True, False]
    book.set_prices([CU], np.array([80_000.0]))
    assert book.unpriced_accounts() is None
