"""The book's events beyond the two-day examples: negative prices, equity ≤ 0, orders,
contracts priced before anyone holds them, limit-locked figures, close order off SHFE, and a
property test that incremental marks equal full re-marks after any sequence of events."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.account_math import FIGURES
from rules.book import AccountBook, AccountPolicy, BookError
from tests.rules.book_fixtures import fee_table

CENT = 0.005


@pytest.fixture(scope="module")
def table():
    return fee_table()


def _trade(book, account, instrument, direction, offset, volume, price, **extra):
    return book.apply_trade({"account_id": account, "instrument": instrument,
                             "direction": direction, "offset": offset, "volume": volume,
                             "price": price, **extra})  # fmt: skip


def test_longs_and_shorts_through_a_negative_price(table):
    book = AccountBook(table)
    for account, direction in (("LONG", "long"), ("SHORT", "short")):
        book.apply_snapshot({"account_id": account, "pre_balance": 50_000, "positions": [
            {"instrument": "sc2605", "direction": direction, "volume": 1, "open_price": 20.0}]})  # fmt: skip
    book.set_prices(["sc2605"], np.array([20.0]), pre_settlement=np.array([20.0]))
    book.set_prices(["sc2605"], np.array([0.0]))  # zero is a price: margin 0, loss linear
    long_ = book.account_view("LONG")
    assert long_["position_profit"] == pytest.approx(-20_000, abs=CENT)
    assert long_["margin"] == 0.0 and long_["risk_degree"] == 0.0
    book.set_prices(["sc2605"], np.array([-37.63]))
    long_, short = book.account_view("LONG"), book.account_view("SHORT")
    # (−37.63 − 20) × 1000 = −57,630 ; margin on |price|: 37.63 × 1000 × 10% = 3,763
    assert long_["position_profit"] == pytest.approx(-57_630, abs=CENT)
    assert short["position_profit"] == pytest.approx(57_630, abs=CENT)
    assert long_["margin"] == pytest.approx(3_763, abs=CENT) == short["margin"]
    assert long_["equity"] == pytest.approx(-7_630, abs=CENT)
    assert long_["risk_degree"] == np.inf and long_["exchange_risk_degree"] == np.inf
    assert long_["liquidation_distance"] == 0.0
    assert short["equity"] == pytest.approx(107_630, abs=CENT)
    assert short["risk_degree"] == pytest.approx(3_763 / 107_630, rel=1e-12)
    # The short's line: the price rising by x of |price|: 107,630 − 37,630 x = 3,763 (1 − x)
    x = (107_630 - 3_763) / (37_630 - 3_763)
    assert short["liquidation_distance"] == pytest.approx(x, rel=1e-12)
    # equity ≤ 0 with no margin at all is still past the line
    book.apply_snapshot({"account_id": "BROKE", "pre_balance": 0})
    assert book.account_view("BROKE")["risk_degree"] == np.inf


def test_working_orders_freeze_margin_and_commission_until_done(table):
    book = AccountBook(table, policies=[AccountPolicy(markup=0.02, fee_multiplier=2.0)])
    book.apply_snapshot({"account_id": "O", "pre_balance": 100_000, "frozen_margin": 100})
    book.set_prices(["rb2601"], np.array([3500.0]))
    order = {"type": "order", "account_id": "O", "order_ref": "7", "instrument": "rb2601",
             "direction": "long", "offset": "open", "volume": 2, "price": 3500,
             "status": "working"}  # fmt: skip
    book.apply_order(order)
    v = book.account_view("O")
    # margin 3500 × 2 × 10 × 9% = 6,300 (+ the snapshot's 100); fee 0.0001 × 70,000 × 2 = 14
    assert v["frozen_margin"] == pytest.approx(6_400, abs=CENT)
    assert v["frozen_commission"] == pytest.approx(14, abs=CENT)
    assert v["available"] == pytest.approx(100_000 - 6_414, abs=CENT)
    book.apply_order({**order, "status": "partial", "volume_left": 1})
    assert book.account_view("O")["frozen_margin"] == pytest.approx(3_250, abs=CENT)
    book.apply_order({**order, "status": "cancelled"})
    v = book.account_view("O")
    assert (v["frozen_margin"], v["frozen_commission"]) == (pytest.approx(100), pytest.approx(0))
    with pytest.raises(BookError, match="order_ref"):
        book.apply_order({k: x for k, x in order.items() if k != "order_ref"})


def test_a_new_position_is_marked_at_the_market_at_once(table):
    book = AccountBook(table)
    book.apply_snapshot({"account_id": "N", "pre_balance": 100_000})
    rows = book.set_prices(["cu2605", "zz2601", "junk"], np.array([81_000.0, 1.0, 2.0]))
    assert rows.size == 1 and book.contracts.skipped_prices == 2
    book.mark()
    marks = book.full_marks
    assert book.mark_contracts(book.set_prices(["cu2605"], np.array([81_000.0]))).size == 0
    assert book.full_marks == marks  # a price nobody holds re-marks nobody
    _trade(book, "N", "cu2605", "long", "open", 1, 80_000, commission=0)
    assert book.account_view("N")["position_profit"] == pytest.approx(5_000, abs=CENT)


def test_limit_locked_figures_follow_incremental_marks(table):
    book = AccountBook(table)
    for a in ("K", "F"):
        book.apply_snapshot({"account_id": a, "pre_balance": 60_000, "positions": [
            {"instrument": "rb2601", "direction": "long", "volume": 10, "open_price": 3000}]})  # fmt: skip
    book.apply_snapshot({"account_id": "Z", "pre_balance": 1e6, "positions": [
        {"instrument": "cu2601", "direction": "long", "volume": 1, "open_price": 80_000}]})  # fmt: skip
    book.set_prices(["rb2601", "cu2601"], np.array([2850.0, 80_000.0]),
                    upper_limit=np.array([3150.0, 84_800.0]), lower_limit=np.array([2850.0, 75_200.0]))  # fmt: skip
    figures = book.mark()
    assert figures.locked_contracts.tolist() == [1, 1, 0]
    assert figures.locked_margin[0] == pytest.approx(2850 * 100 * 0.07, abs=CENT)
    rows = book.mark_contracts(book.set_prices(["rb2601"], np.array([2851.0])), full_above=1.0)
    assert sorted(rows.tolist()) == [0, 1] and book.incremental_marks == 1
    assert book.figures.locked_contracts.tolist() == [0, 0, 0]
    assert book.account_view("K")["positions"][0]["limit_locked"] is False


def test_cffex_close_is_first_in_first_out_and_close_today_is_a_close(table):
    book = AccountBook(table)
    book.apply_snapshot({"account_id": "C", "pre_balance": 2e6, "positions": [
        {"instrument": "IF2512", "direction": "long", "volume": 2, "open_price": 4000}]})  # fmt: skip
    book.set_prices(["IF2512"], np.array([4000.0]), pre_settlement=np.array([4000.0]))
    _trade(book, "C", "IF2512", "long", "open", 1, 4010)
    # close_today off SHFE is a plain close; close-today dearer, so yesterday's lots first:
    # fee 0.000023 × 4020 × 2 × 300 = 55.476 (+ the open's 0.000023 × 4010 × 300 = 27.669)
    _trade(book, "C", "IF2512", "short", "close_today", 2, 4020)
    v = book.account_view("C")
    assert (v["positions"][0]["volume"], v["positions"][0]["today_volume"]) == (1, 1)
    assert v["commission"] == pytest.approx(27.669 + 55.476, abs=CENT)
    assert v["close_profit"] == pytest.approx((4020 - 4000) * 2 * 300, abs=CENT)
    with pytest.raises(BookError, match="holds 1 lots"):
        _trade(book, "C", "IF2512", "short", "close", 2, 4020)


# ---- property: incremental marks == full re-marks ----------------------------------------

INSTRUMENTS = ("rb2601", "rb2605", "IF2512", "IC2512", "m2601", "sc2605")
ACCOUNTS = ("A", "B", "C", "D")
POLICIES = [AccountPolicy(match="t/*", cost="by_trade"),
            AccountPolicy(match="o/*", single_side="off", margin_price="open", markup=0.01),
            AccountPolicy(match="p/*", margin_price="pre_settlement", fee_multiplier=1.5)]  # fmt: skip
GROUPS = {"A": "d/a", "B": "t/b", "C": "o/c", "D": "p/d"}
BASE = {"rb2601": 3500.0, "rb2605": 3450.0, "IF2512": 4000.0, "IC2512": 6000.0,
        "m2601": 3000.0, "sc2605": 20.0}  # fmt: skip

price = st.floats(-0.5, 1.5).map(lambda f: round(f, 3))
prices_event = st.tuples(
    st.just("prices"),
    st.lists(st.sampled_from(INSTRUMENTS), min_size=1, max_size=3, unique=True),
    st.lists(price, min_size=3, max_size=3),
    st.booleans(),
)
event = st.one_of(
    prices_event,
    prices_event,
    st.tuples(st.just("trade"), st.sampled_from(ACCOUNTS), st.sampled_from(INSTRUMENTS),
              st.sampled_from(("long", "short")),
              st.sampled_from(("open", "open", "close", "close_today")),
              st.integers(1, 4), price),
    st.tuples(st.just("transfer"), st.sampled_from(ACCOUNTS), st.integers(1, 50_000), st.booleans()),
    st.tuples(st.just("order"), st.sampled_from(ACCOUNTS), st.integers(0, 3),
              st.sampled_from(INSTRUMENTS), st.sampled_from(("open", "close")), st.integers(1, 3),
              st.sampled_from(("working", "partial", "filled", "cancelled"))),
    st.tuples(st.just("settle"), price),
)  # fmt: skip


def _new_book(table):
    """Every (account, instrument, side) has a row from the start (some at volume 0), so no
    event adds a position and every mark after it may be incremental."""
    book = AccountBook(table, policies=POLICIES)
    for i, a in enumerate(ACCOUNTS):
        positions = [{"instrument": n, "direction": d, "volume": (i + j + k) % 3,
                      "open_price": BASE[n]}
                     for j, n in enumerate(INSTRUMENTS) for k, d in enumerate(("long", "short"))]  # fmt: skip
        book.apply_snapshot({"account_id": a, "group_path": GROUPS[a], "pre_balance": 300_000,
                             "positions": positions})  # fmt: skip
    names = list(BASE)
    book.set_prices(
        names, np.array(list(BASE.values())), pre_settlement=np.array(list(BASE.values()))
    )
    return book


def _apply(book, ev, day, incremental):
    """One event, then the mark the shard would do (incremental) or a full re-mark."""
    kind = ev[0]
    rows = None
    try:
        if kind == "trade":
            _, a, inst, d, offset, vol, f = ev
            rows = [_trade(book, a, inst, d, offset, vol, BASE[inst] * f)]
        elif kind == "transfer":
            rows = [book.apply_transfer(ev[1], float(ev[2]), ev[3])]
        elif kind == "prices":
            names, fs, limits = ev[1], ev[2], ev[3]
            last = np.array([BASE[n] * f for n, f in zip(names, fs, strict=False)])
            kw = {"upper_limit": last.copy(), "lower_limit": last - 1} if limits else {}
            contracts = book.set_prices(names, last, **kw)
            if incremental:
                book.mark_contracts(contracts, full_above=1.0)
        elif kind == "order":
            _, a, ref, inst, offset, vol, status = ev
            rows = [book.apply_order({"account_id": a, "order_ref": str(ref), "instrument": inst,
                                      "direction": "long", "offset": offset, "volume": vol,
                                      "price": BASE[inst], "status": status})]  # fmt: skip
        else:
            c = book.contracts
            prices = {n: (float(c.last[c.index[n]]) if np.isfinite(c.last[c.index[n]])
                          else BASE[n]) * (1 + ev[1] / 100) for n in c.names}  # fmt: skip
            book.apply_settlement(
                {
                    "trading_day": f"202511{day:02d}",
                    "next_trading_day": f"202511{day + 1:02d}",
                    "prices": prices,
                }
            )
            day += 1
    except BookError:
        pass
    if rows is not None and incremental:
        book.mark_accounts(np.array(rows))
    if not incremental:
        book.mark()
    return day


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event, min_size=1, max_size=25))
def test_incremental_marks_equal_full_re_marks(events):
    table = fee_table()
    inc, full = _new_book(table), _new_book(table)
    inc.mark()
    day_i = day_f = 1
    for ev in events:
        day_i = _apply(inc, ev, day_i, incremental=True)
        day_f = _apply(full, ev, day_f, incremental=False)
        a, b = inc.figures, full.figures
        for name in FIGURES:
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-6,
                                       err_msg=f"{name} after {ev}")  # fmt: skip


def test_a_reduce_plan_on_a_lock_frees_only_the_larger_sides_excess(table):
    from rules.actions import plan_action

    book = AccountBook(table)
    book.apply_snapshot({"account_id": "R", "pre_balance": 60_000, "positions": [
        {"instrument": "rb2601", "direction": "long", "volume": 20, "open_price": 3000},
        {"instrument": "rb2605", "direction": "short", "volume": 10, "open_price": 3000}]})  # fmt: skip
    book.set_prices(["rb2601", "rb2605"], np.array([3000.0, 3000.0]))
    view = book.account_view("R")
    # long 3000 × 20 × 10 × 7% = 42,000 charged ; short 21,000 not (its excess 0)
    assert view["margin"] == pytest.approx(42_000, abs=CENT)
    excess = {p["instrument"]: p["margin_side_excess"] for p in view["positions"]}
    assert excess == {"rb2601": pytest.approx(21_000), "rb2605": 0.0}
    plan = plan_action(view, "reduce", target=0.5)
    # to free 42,000 − 30,000 = 12,000: 2,100 a long lot → 6 lots; the short leg frees nothing
    assert [(leg.instrument, leg.volume) for leg in plan.legs] == [("rb2601", 6.0)]
    assert plan.projected_risk_degree == pytest.approx((42_000 - 12_600) / 60_000)
