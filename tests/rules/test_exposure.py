"""Operating exposure of a book: units, money, business units, basis, hedge ratio, contracts."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from rules.exposure import (
    UNASSIGNED,
    InputError,
    Latches,
    OperatingBook,
    limit_values,
    parse_record,
)

TODAY = date(2026, 3, 2)


def book_with_records() -> OperatingBook:
    book = OperatingBook("rb")
    book.apply(
        [
            parse_record("inventory", {"id": "W1", "commodity": "rb", "quantity": "3000",
                                       "business_unit": "east", "location": "Shanghai"}),
            parse_record("inventory", {"id": "W2", "commodity": "rb", "quantity": 1000,
                                       "business_unit": "north"}),
            parse_record("contract", {"id": "P1", "commodity": "rb", "side": "purchase",
                                      "quantity": 2000, "price": 3050, "delivery_date": "2026-04-15",
                                      "counterparty": "Steel Co", "business_unit": "east"}),
            parse_record("contract", {"id": "S1", "commodity": "rb", "side": "sale",
                                      "quantity": 1500, "price": 3300,
                                      "delivery_date": "20260420", "counterparty": "Builder Ltd",
                                      "business_unit": "north"}),
            parse_record("spot", {"commodity": "rb", "date": "2026-02-27", "price": 3080}),
            parse_record("futures_close", {"commodity": "rb", "date": "2026-02-27", "price": 3040}),
            parse_record("spot", {"commodity": "rb", "date": "2026-03-02", "price": 3110,
                                  "location": "Shanghai"}),
            parse_record("spot", {"commodity": "rb", "date": "2026-03-02", "price": 3090,
                                  "location": "Tianjin"}),
        ]
    )  # fmt: skip
    book.futures_units_by_shard = {0: -2000.0, 1: -500.0}
    return book


def test_exposure_units_money_basis_and_hedge_ratio():
    f = book_with_records().figures(futures_price=3060.0, today=TODAY)
    # physical = inventory 4,000 + purchases 2,000 - sales 1,500 = 4,500; futures -2,500
    assert (f["inventory_units"], f["purchase_units"], f["sale_units"]) == (4000, 2000, 1500)
    assert f["physical_units"] == 4500 and f["futures_units"] == -2500 and f["net_units"] == 2000
    assert f["spot_price"] == 3100  # mean of the two locations quoted on the latest day
    assert f["net_value"] == 2000 * 3100 and f["futures_value"] == -2500 * 3060
    assert f["basis"] == 3100 - 3060
    assert f["basis_change"] == 40 - (3080 - 3040)  # against the last day with both prices
    assert f["hedge_ratio"] == pytest.approx(2500 / 4500)
    east, north = f["by_unit"]["east"], f["by_unit"]["north"]
    assert east["net_units"] == 3000 + 2000 and north["net_units"] == 1000 - 1500
    assert f["by_unit"][UNASSIGNED]["futures"] == -2500  # shards did not say which unit
    assert f["var_method"] == "insufficient history" and math.isnan(f["var_95"])


def test_futures_by_business_unit_when_shards_send_it():
    book = book_with_records()
    book.futures_by_unit = {0: {"east": -2000.0}, 1: {"north": -500.0}}
    f = book.figures(3060.0, TODAY)
    assert f["by_unit"]["east"]["futures"] == -2000 and UNASSIGNED not in f["by_unit"]
    values = limit_values(f, "abs_net_units", "business_unit")
    assert values == {"rb/east": 3000.0, "rb/north": 1000.0}
    assert limit_values(f, "hedge_ratio", "commodity") == {"rb": pytest.approx(2500 / 4500)}


def test_var_uses_spot_and_futures_history_of_completed_days():
    book = book_with_records()
    start = TODAY - timedelta(days=40)
    for i in range(40):
        d = start + timedelta(days=i)
        book.apply([parse_record("spot", {"commodity": "rb", "date": d.isoformat(),
                                          "price": 3000 + (i % 5) * 10}),
                    parse_record("futures_close", {"commodity": "rb", "date": d.isoformat(),
                                                   "price": 2990 + (i % 4) * 12})])  # fmt: skip
    f = book.figures(3060.0, TODAY, var_window=250, var_min_obs=20)
    assert f["var_method"] == "spot+futures" and f["var_obs"] == 39
    assert f["var_99"] >= f["var_95"] > 0 and f["param_var_99"] > f["param_var_95"] > 0
    assert max(f["var_pnl"]) < TODAY.isoformat()  # today's price is not a close yet


def test_records_replace_by_id_and_closing_removes():
    book = book_with_records()
    book.apply([parse_record("inventory", {"id": "W1", "commodity": "rb", "quantity": 0}),
                parse_record("contract", {"id": "S1", "commodity": "rb", "side": "sale",
                                          "quantity": 1500, "price": 3300,
                                          "delivery_date": "2026-04-20",
                                          "counterparty": "Builder Ltd",
                                          "status": "delivered"})])  # fmt: skip
    assert set(book.inventory) == {"W2"} and set(book.contracts) == {"P1"}


def test_contract_performance_checks():
    book = book_with_records()
    off = book.off_market(book.market_price(3060.0), tolerance=0.05)
    assert [(c.id, round(d, 4)) for c, d in off] == [("S1", round(3300 / 3100 - 1, 4))]
    assert book.counterparty_exposure(3100.0) == {"Steel Co": 2000 * 3100,
                                                  "Builder Ltd": 1500 * 3100}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "raw", "reason"),
    [
        ("inventory", {"commodity": "rb", "quantity": 5}, "missing id"),
        ("inventory", {"id": "x", "commodity": "rb", "quantity": "nan"}, "NaN or infinite"),
        ("inventory", {"id": "x", "commodity": "rb", "quantity": "-3"}, "must not be negative"),
        ("contract", {"id": "c", "commodity": "rb", "side": "lend", "quantity": 1, "price": 1,
                      "delivery_date": "2026-01-01", "counterparty": "A"}, "purchase or sale"),
        ("contract", {"id": "c", "commodity": "rb", "side": "sale", "quantity": 1, "price": 1,
                      "delivery_date": "soon", "counterparty": "A"}, "delivery_date"),
        ("spot", {"commodity": "rb", "date": "2026-03-02", "price": 0}, "must be positive"),
        ("bond", {"commodity": "rb"}, "unknown record kind"),
    ],
)  # fmt: skip
def test_bad_records_say_why(kind, raw, reason):
    with pytest.raises(InputError, match=reason):
        parse_record(kind, raw)


def test_latches_fire_once_and_rearm():
    latch = Latches()
    assert latch.step("k", breached=True, cleared=False) == 1
    assert latch.step("k", breached=True, cleared=False) is None
    assert latch.step("k", breached=False, cleared=True) is None
    assert latch.step("k", breached=True, cleared=False) == 2
