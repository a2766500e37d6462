"""The backtest's figure paths and bounds (rules/engine/bounds.py) under what issue 11 added:
single-side margin on hedged groups, prices through zero, limit-locked figures."""

from __future__ import annotations

import numpy as np

from rules.account_math import FIGURES
from rules.book import AccountBook, AccountPolicy
from rules.engine.bounds import figure_bounds, figure_path
from tests.rules.book_fixtures import fee_table

TABLE = fee_table()
PRICES = {"rb2601": 3000.0, "rb2605": 2950.0, "IF2512": 4000.0, "IC2512": 6000.0, "sc2605": 5.0}


def hedged_book(n: int, seed: int) -> AccountBook:
    rng = np.random.default_rng(seed)
    book = AccountBook(TABLE, policies=[AccountPolicy(match="off/*", single_side="off"),
                                        AccountPolicy(match="open/*", margin_price="open")])  # fmt: skip
    names = list(PRICES)
    for i in range(n):
        positions = []
        for name in rng.choice(names, int(rng.integers(2, 5)), replace=False):
            for direction in ("long", "short"):
                if rng.random() < 0.6:
                    positions.append({"instrument": str(name), "direction": direction,
                                      "volume": float(rng.integers(1, 6)), "today_volume": 0.0,
                                      "open_price": PRICES[str(name)] * (1 + rng.normal(0, 0.01))})  # fmt: skip
        group = ("on/x", "off/x", "open/x")[i % 3]
        book.apply_snapshot({"account_id": f"H{i:03d}", "group_path": group, "positions": positions,
                             "pre_balance": float(rng.uniform(2e5, 3e6))})  # fmt: skip
    base = np.array([PRICES[n] for n in book.contracts.names])
    book.set_prices(book.contracts.names, base, upper_limit=base * 1.05, lower_limit=base * 0.95,
                    pre_settlement=base)  # fmt: skip
    return book


def test_figure_path_is_the_books_marking_bit_for_bit_with_hedges_locks_and_negatives():
    book = hedged_book(45, seed=4)
    rng = np.random.default_rng(7)
    names = book.contracts.names
    base = np.array([PRICES[n] for n in names])
    path = np.array([base * (1 + rng.normal(0, 0.04, base.size)) for _ in range(10)])
    sc = names.index("sc2605")
    path[:, sc] = np.linspace(6.0, -3.0, 10)  # crude through zero
    path[3] = base * 0.95  # everything at limit-down: longs locked
    rows = np.arange(0, 45, 2)
    got = figure_path(book, rows, path, set(FIGURES))
    assert got["locked_contracts"][3].sum() > 0
    for k in range(path.shape[0]):
        book.contracts.last[: len(names)] = path[k]
        figures = book.mark()
        for metric, values in got.items():
            assert np.array_equal(values[k], getattr(figures, metric)[rows]), (metric, k)


def test_bounds_contain_every_path_with_hedges_and_prices_through_zero():
    book = hedged_book(60, seed=11)
    rng = np.random.default_rng(3)
    names = book.contracts.names
    base = np.array([PRICES[n] for n in names])
    lo, hi = base * 0.94, base * 1.06
    sc = names.index("sc2605")
    lo[sc], hi[sc] = -4.0, 6.0
    rows = np.arange(60)
    bounds = figure_bounds(book, lo, hi, np.zeros(base.size, dtype=bool), rows)
    assert set(bounds) == set(FIGURES)
    for _ in range(60):
        book.contracts.last[: base.size] = rng.uniform(lo, hi)
        figures = book.mark()
        for metric, (b_lo, b_hi) in bounds.items():
            v = getattr(figures, metric)
            assert np.all((v >= b_lo) & (v <= b_hi)), metric
