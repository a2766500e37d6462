"""CTP account arithmetic against worked examples computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from infra.specs import load_contract_table
from rules.account_math import mark_to_market, risk_degree
from rules.book import AccountBook, BookError


@pytest.fixture(scope="module")
def table():
    return load_contract_table()


def test_vectorized_mark_two_accounts_by_hand():
    # Account 0: long rb 10 @3000 (last 3100, ×10, 7%), short cu 2 @80000 (last 81000, ×5, 8%).
    # Account 1: flat, only cash.
    figures = mark_to_market(
        n_accounts=2,
        pos_account=np.array([0, 0]),
        sign=np.array([1.0, -1.0]),
        volume=np.array([10.0, 2.0]),
        cost_price=np.array([3000.0, 80000.0]),
        multiplier=np.array([10.0, 5.0]),
        margin_rate=np.array([0.07, 0.08]),
        price=np.array([3100.0, 81000.0]),
        static_equity=np.array([1_150_000.0, 500_000.0]),
        close_profit=np.array([5_000.0, 0.0]),
        commission=np.array([300.0, 0.0]),
        frozen=np.array([1_020.0, 0.0]),
    )
    # position profit: +100×10×10 = 10,000 ; −1000×2×5 = −10,000  → 0
    assert figures.position_profit[0] == pytest.approx(0.0)
    # equity = 1,150,000 + 5,000 + 0 − 300
    assert figures.equity[0] == pytest.approx(1_154_700.0)
    # margin = 3100×10×10×7% + 81000×2×5×8% = 21,700 + 64,800
    assert figures.margin[0] == pytest.approx(86_500.0)
    assert figures.available[0] == pytest.approx(1_154_700.0 - 86_500.0 - 1_020.0)
    assert figures.risk_degree[0] == pytest.approx(86_500.0 / 1_154_700.0)
    assert figures.equity[1] == 500_000.0 and figures.risk_degree[1] == 0.0


def test_risk_degree_with_no_equity_is_infinite():
    # Behaviour changed deliberately (issue 11): equity ≤ 0 is past the liquidation line
    # whatever the margin, so a flat account with no equity reads +inf too.
    out = risk_degree(np.array([10.0, 0.0, 5.0, 0.0]), np.array([0.0, 0.0, -1.0, 1.0]))
    assert np.isinf(out[0]) and np.isinf(out[1]) and np.isinf(out[2]) and out[3] == 0.0


def test_book_same_day_deposit_short_and_partial_close(table):
    book = AccountBook(table)
    book.apply_snapshot(
        {
            "account_id": "A1",
            "pre_balance": 1_000_000,
            "group_path": "g/s/u",
            "withdraw": 50_000,
            "close_profit": 5_000,
            "commission": 300,
            "frozen_margin": 1_000,
            "frozen_commission": 20,
            "positions": [
                {"instrument": "rb2601", "direction": "long", "volume": 10, "cost_price": 3000},
                {"instrument": "cu2601", "direction": "short", "volume": 2, "cost_price": 80000},
            ],
        }
    )
    book.apply_transfer("A1", 200_000, deposit=True)  # same-day deposit
    book.set_prices(["rb2601", "cu2601"], np.array([3100.0, 81000.0]))
    view = book.account_view("A1")
    assert view["static_equity"] == pytest.approx(1_150_000.0)
    assert view["equity"] == pytest.approx(1_154_700.0)
    assert view["margin"] == pytest.approx(86_500.0)
    assert view["available"] == pytest.approx(1_067_180.0)

    # Partial close: sell 4 rb @3050 with 12 commission → close profit (3050−3000)×4×10 = 2,000.
    book.apply_trade(
        {
            "account_id": "A1",
            "instrument": "rb2601",
            "direction": "short",
            "offset": "close",
            "volume": 4,
            "price": 3050,
            "commission": 12,
        }
    )
    view = book.account_view("A1")
    rb = next(p for p in view["positions"] if p["instrument"] == "rb2601")
    assert rb["volume"] == 6 and rb["cost_price"] == 3000
    assert view["close_profit"] == pytest.approx(7_000.0)
    assert view["commission"] == pytest.approx(312.0)
    # rb: profit 100×6×10 = 6,000 ; cu: −10,000 ; margin 3100×6×10×7% + 64,800 = 13,020 + 64,800
    assert view["position_profit"] == pytest.approx(-4_000.0)
    assert view["margin"] == pytest.approx(77_820.0)
    assert view["equity"] == pytest.approx(1_150_000 + 7_000 - 4_000 - 312)


def test_open_averages_cost_and_overclose_is_refused(table):
    book = AccountBook(table)
    book.apply_snapshot({"account_id": "B", "pre_balance": 100_000, "positions": []})
    book.apply_trade(
        {
            "account_id": "B",
            "instrument": "rb2601",
            "direction": "long",
            "offset": "open",
            "volume": 2,
            "price": 3000,
        }
    )
    book.apply_trade(
        {
            "account_id": "B",
            "instrument": "rb2601",
            "direction": "long",
            "offset": "open",
            "volume": 2,
            "price": 3100,
        }
    )
    pos = book.positions_of("B")[0]
    assert pos["cost_price"] == pytest.approx(3050.0) and pos["today_volume"] == 4
    with pytest.raises(BookError):
        book.apply_trade(
            {
                "account_id": "B",
                "instrument": "rb2601",
                "direction": "short",
                "offset": "close",
                "volume": 5,
                "price": 3000,
            }
        )


def test_margin_markup_adds_to_exchange_rate(table):
    book = AccountBook(table, margin_markup=0.02)
    book.apply_snapshot(
        {
            "account_id": "C",
            "pre_balance": 100_000,
            "positions": [
                {"instrument": "rb2601", "direction": "long", "volume": 1, "cost_price": 3000}
            ],
        }
    )
    book.set_prices(["rb2601"], np.array([3000.0]))
    assert book.account_view("C")["margin"] == pytest.approx(3000 * 10 * 0.09)


def test_bad_events_are_refused(table):
    book = AccountBook(table)
    with pytest.raises(BookError):
        book.apply_transfer("nobody", 10, deposit=True)
    book.apply_snapshot({"account_id": "D", "pre_balance": 1, "positions": []})
    with pytest.raises(BookError):
        book.apply_transfer("D", float("nan"), deposit=False)


def test_incremental_mark_matches_full_mark_and_touches_only_holders(table):
    rng = np.random.default_rng(3)
    instruments = ["rb2601", "hc2601", "cu2601", "au2606", "IF2512", "m2605"]
    book = AccountBook(table)
    for a in range(200):
        picks = rng.choice(len(instruments), size=2, replace=False)
        book.apply_snapshot(
            {
                "account_id": f"A{a}",
                "pre_balance": 1e6,
                "positions": [
                    {
                        "instrument": instruments[i],
                        "direction": "long" if rng.random() < 0.5 else "short",
                        "volume": int(rng.integers(1, 5)),
                        "cost_price": 1000.0 + i,
                    }
                    for i in picks
                ],
            }
        )
    prices = np.array([3000.0, 3100.0, 80000.0, 900.0, 4500.0, 2900.0])
    book.set_prices(instruments, prices)
    book.mark()
    moved = np.array([2950.0])
    contract_rows = book.set_prices(["cu2601"], moved * 27)
    touched = book.mark_contracts(contract_rows, full_above=1.0)
    holders = {
        a
        for a in range(200)
        if any(p["instrument"] == "cu2601" for p in book.positions_of(f"A{a}"))
    }
    assert set(touched.tolist()) == holders
    incremental = {
        name: getattr(book.figures, name).copy() for name in ("equity", "margin", "risk_degree")
    }
    full = book.mark()
    for name, values in incremental.items():
        np.testing.assert_allclose(values, getattr(full, name), rtol=1e-12)
    assert book.incremental_marks == 1
