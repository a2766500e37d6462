"""Stress scenarios on a hand-computed book: the morning question answered to the yuan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rules.book import AccountBook
from rules.contracts import ContractTable
from rules.stress import ScenarioError, evaluate, reverse_stress, scenario_from_record, uniform
from rules.stress.scenarios import stressed_prices

DAY = [["09:00", "10:15"], ["10:30", "11:30"], ["13:30", "15:00"]]


def _table() -> ContractTable:
    def rec(product: str, exchange: str, mult: float, tick: float, margin: float, limit: float,
            commodity: str | None = None) -> dict:  # fmt: skip
        r = {"product": product, "exchange": exchange, "name": product, "multiplier": mult,
             "tick_size": tick, "margin_rate": margin, "limit_rate": limit, "sessions": DAY,
             "unit": "t", "reference_price": 100.0}  # fmt: skip
        if commodity:
            r["commodity"] = commodity
        return r

    return ContractTable.from_records([
        rec("rb", "SHFE", 10, 1, 0.07, 0.05),
        rec("i", "DCE", 100, 0.5, 0.11, 0.09),
        rec("cu", "SHFE", 5, 10, 0.10, 0.07),
    ])  # fmt: skip


def _book() -> AccountBook:
    book = AccountBook(_table())
    snapshots = [
        # A: long 10 rb, margin 3500×10×10×7% = 24,500 on equity 100,000 (24.5%).
        ("A", "grp/sub1/u1", 100_000.0, [("rb2601", "long", 10)]),
        # B: long 40 rb, margin 98,000 on 120,000 (81.67%).
        ("B", "grp/sub1/u2", 120_000.0, [("rb2601", "long", 40)]),
        # C: short 20 i at 800: margin 800×20×100×11% = 176,000 on 400,000; and 2 cu long at 70,000.
        ("C", "grp/sub2/u3", 400_000.0, [("i2601", "short", 20), ("cu2601", "long", 2)]),
    ]
    for account, path, balance, positions in snapshots:
        book.apply_snapshot({
            "account_id": account, "group_path": path, "pre_balance": balance,
            "positions": [{"instrument": i, "direction": d, "volume": v, "today_volume": 0,
                           "open_price": {"rb2601": 3500.0, "i2601": 800.0, "cu2601": 70000.0}[i]}
                          for i, d, v in positions],
        })  # fmt: skip
    names = ["rb2601", "i2601", "cu2601"]
    px = np.array([3500.0, 800.0, 70000.0])
    book.set_prices(names, px, pre_settlement=px)
    book.mark()
    return book


BLACK_7 = {"name": "black-open-7", "description": "ferrous opens 7% lower",
           "moves": [{"product": ["rb", "hc", "i", "j", "jm"], "pct": -7}]}  # fmt: skip


def test_black_open_7_to_the_yuan() -> None:
    result = evaluate(_book(), scenario_from_record(BLACK_7), target=0.8)
    rows = {r["account_id"]: r for r in (result.row(i) for i in range(3))}
    # rb 3500 → 3255: A loses 245 × 10 × 10 = 24,500; margin 3255 × 100 × 7% = 22,785.
    a = rows["A"]
    assert a["equity_after"] == pytest.approx(75_500.0, abs=0.005)
    assert a["margin_after"] == pytest.approx(22_785.0, abs=0.005)
    assert a["risk_degree_after"] == pytest.approx(22_785 / 75_500)
    assert not a["past_line"] and a["margin_call"] == 0.0
    # B loses 98,000: equity 22,000, margin 91,140 → 414.3%, past the line, not bust;
    # shortfall to 100%: 69,140; margin call back to 80%: 91,140 / 0.8 − 22,000 = 91,925.
    b = rows["B"]
    assert b["equity_after"] == pytest.approx(22_000.0, abs=0.005)
    assert b["margin_after"] == pytest.approx(91_140.0, abs=0.005)
    assert b["past_line"] and not b["bust"]
    assert b["shortfall_to_line"] == pytest.approx(69_140.0, abs=0.005)
    assert b["margin_call"] == pytest.approx(91_925.0, abs=0.005)
    # C is short iron ore: i 800 → 744 gains 56 × 20 × 100 = 112,000; cu unmoved.
    # margin 744 × 2000 × 11% = 163,680 + cu 70,000 × 10 × 10% = 70,000.
    c = rows["C"]
    assert c["equity_after"] == pytest.approx(512_000.0, abs=0.005)
    assert c["margin_after"] == pytest.approx(233_680.0, abs=0.005)
    summary = result.summary()
    assert summary["past_line"] == 1 and summary["margin_call"] == pytest.approx(91_925.0)
    assert result.loss_by_commodity == pytest.approx({"rb": 24_500 + 98_000, "i": -112_000})
    roll = result.rollup()
    assert roll["grp/sub1"]["past_line"] == 1 and roll["grp"]["accounts"] == 3
    assert roll["grp/sub1"]["margin_call"] == pytest.approx(91_925.0)
    assert [r["account_id"] for r in result.top(2)] == ["B", "A"]


def test_the_live_book_is_not_changed() -> None:
    book = _book()
    before = np.array(book.mark().equity)
    evaluate(book, scenario_from_record(BLACK_7))
    assert np.array_equal(np.array(book.mark().equity), before)
    assert book.contracts.last[0] == 3500.0


def test_limit_moves_and_cap() -> None:
    table = _table()
    specs = [table.spec("rb2601"), table.spec("i2601")]
    pre = np.array([3500.0, 800.0])
    down = scenario_from_record({"name": "x", "moves": [{"all": True, "limits": -1}]})
    p = stressed_prices(down, ["rb2601", "i2601"], specs, pre, pre)
    assert p.after == pytest.approx([3325.0, 728.0]) and list(p.at_limit) == [-1, -1]
    two = scenario_from_record({"name": "x", "moves": [{"product": "rb", "limits": -2}]})
    p = stressed_prices(two, ["rb2601", "i2601"], specs, pre, pre)
    assert p.after == pytest.approx([3500 * 0.95**2, 800.0]) and list(p.moved) == [True, False]
    capped = scenario_from_record({"name": "x", "cap_at_limit": True,
                                   "moves": [{"all": True, "pct": -7}]})  # fmt: skip
    p = stressed_prices(capped, ["rb2601", "i2601"], specs, pre, pre)
    # rb's limit is 5%: capped at 3325; i's is 9%: −7% stands at 744.
    assert p.after == pytest.approx([3325.0, 744.0]) and list(p.capped) == [True, False]


def test_most_specific_move_wins() -> None:
    table = _table()
    specs = [table.spec("rb2601"), table.spec("cu2601")]
    sc = scenario_from_record(
        {
            "name": "x",
            "moves": [
                {"all": True, "pct": -3},
                {"exchange": "SHFE", "pct": -5},
                {"contract": "cu2601", "pct": 2},
            ],
        }
    )
    px = np.array([3500.0, 70000.0])
    p = stressed_prices(sc, ["rb2601", "cu2601"], specs, px, px)
    assert p.after == pytest.approx([3500 * 0.95, 70000 * 1.02])


@pytest.mark.parametrize(
    "record, words",
    [
        ({"name": "x", "moves": []}, "moves must be a non-empty list"),
        ({"name": "x", "moves": [{"product": "rb"}]}, "exactly one of pct or limits"),
        ({"name": "x", "moves": [{"prodcut": "rb", "pct": 1}]}, "unknown key 'prodcut'"),
        ({"name": "x", "moves": [{"all": True, "pct": -100}]}, "zero or below"),
        ({"name": "x", "moves": [{"all": True, "pct": 1}], "cap": True}, "unknown key 'cap'"),
        ({"moves": []}, "name must be"),
    ],
)
def test_bad_scenarios_name_the_key(record: dict, words: str) -> None:
    with pytest.raises(ScenarioError, match=words):
        scenario_from_record(record)


def test_reverse_stress_matches_the_scenario_that_crosses() -> None:
    book = _book()
    rev = reverse_stress(book)
    i = rev.account_ids.index("B")
    # B: E = 120,000, M = 98,000, long 40 rb (notional 3500 × 40 × 10 = 1,400,000). A fall x:
    # equity 120,000 − 1,400,000·x, margin 98,000·(1 − x); they meet at
    # x = 22,000 / (1,400,000 − 98,000) = 1.6897%.
    assert rev.down[i] == pytest.approx(22_000 / 1_302_000, rel=1e-9)
    assert math.isinf(rev.up[i])  # a long-only account cannot be pushed over by a rise
    assert rev.by_commodity["rb"][0][i] == pytest.approx(rev.down[i])
    assert math.isinf(rev.by_commodity["i"][0][i])
    # The move found really crosses (and a hair less does not).
    x = rev.down[i] * 100
    at = evaluate(book, uniform(-x * 1.0001)).row(i)
    short = evaluate(book, uniform(-x * 0.9999)).row(i)
    assert at["past_line"] and not short["past_line"]
    assert rev.nearest(i)[0] in ("all-", "rb-")


def test_shard_results_merge_into_one() -> None:
    from rules.stress.evaluate import merge_results

    book = _book()
    whole = evaluate(book, scenario_from_record(BLACK_7))
    merged = merge_results([whole, whole])
    assert merged.account_ids == whole.account_ids * 2
    assert merged.summary()["margin_call"] == pytest.approx(2 * whole.summary()["margin_call"])
    assert merged.loss_by_commodity["rb"] == pytest.approx(2 * whole.loss_by_commodity["rb"])


def test_a_held_contract_without_a_price_is_named_not_silently_left_unmoved():
    book = AccountBook(_table())
    book.apply_snapshot({
        "account_id": "A", "group_path": "g", "pre_balance": 100_000.0,
        "positions": [{"instrument": "rb2601", "direction": "long", "volume": 10,
                       "today_volume": 0, "open_price": 3500.0}],
    })  # fmt: skip
    result = evaluate(book, scenario_from_record(BLACK_7))
    assert result.unpriced == ("rb2601",)
    assert result.summary()["unpriced"] == ["rb2601"]
    book.set_prices(["rb2601"], np.array([3500.0]), pre_settlement=np.array([3500.0]))
    assert evaluate(book, scenario_from_record(BLACK_7)).unpriced == ()
