"""An incremental mark reads only what the holders of the moved contracts hold: the index it
uses (rules.book.marking.holdings) gives exactly the positions a scan of the whole book would,
and the figures of the accounts not holding a moved contract are left as they were."""

from __future__ import annotations

import numpy as np

from gateways.sim.accounts import _population
from gateways.sim.exchange import main_instruments
from infra.specs import load_contract_table
from rules.book import AccountBook
from rules.book.marking import holdings

TABLE = load_contract_table()


def _book(n: int = 400) -> tuple[AccountBook, list[str], np.ndarray]:
    contracts = main_instruments(TABLE, 40)
    pre = np.array([TABLE.spec(c).reference_price for c in contracts])
    book = AccountBook(TABLE)
    prices = dict(zip(contracts, pre.tolist(), strict=True))
    for rec in _population(contracts, TABLE, prices, n, 4, 3, ("grp", "sub"), 0.0):
        book.apply_snapshot(rec)
    book.set_prices(contracts, pre)
    book.mark()
    return book, contracts, pre


def test_holdings_are_the_scan_of_every_position():
    book, contracts, _ = _book()
    n = book.n_positions
    for moved in (["rb2601"], contracts[:3], contracts[5:6] + contracts[20:22]):
        rows = np.array([book.contracts.index[c] for c in moved if c in book.contracts.index])
        pos, holders, theirs = holdings(book, rows)
        scan = np.flatnonzero(np.isin(book.pos_contract[:n], rows))
        np.testing.assert_array_equal(np.sort(pos), scan)
        np.testing.assert_array_equal(holders, np.unique(book.pos_account[scan]))
        np.testing.assert_array_equal(
            np.sort(theirs), np.flatnonzero(np.isin(book.pos_account[:n], holders))
        )
        for a in holders[:20].tolist():  # each account's positions in ascending order
            mine = theirs[book.pos_account[theirs] == a]
            np.testing.assert_array_equal(mine, np.sort(mine))


def test_incremental_mark_equals_a_full_mark_and_leaves_the_others_alone():
    book, contracts, pre = _book()
    before = book.figures.equity.copy()
    moved = contracts[7:8]
    rows = book.set_prices(moved, pre[7:8] * 0.97)
    marked = book.mark_contracts(rows)
    assert book.incremental_marks == 1 and 0 < marked.size < book.n_accounts
    others = np.setdiff1d(np.arange(book.n_accounts), marked)
    np.testing.assert_array_equal(book.figures.equity[others], before[others])
    assert (book.figures.equity[marked] != before[marked]).all()
    incremental = {k: getattr(book.figures, k).copy() for k in ("equity", "margin", "risk_degree",
                                                                 "liquidation_distance")}  # fmt: skip
    book.mark()
    for name, values in incremental.items():
        np.testing.assert_array_equal(getattr(book.figures, name), values, err_msg=name)
