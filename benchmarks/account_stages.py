"""Where an AccountShard's time goes per price update, stage by stage, and how each stage
grows with the accounts: the shard's own pure parts (rules.book marking, the rule engine) in
process, no Ray or ZeroMQ, at 10k / 50k / 100k / 200k accounts × 10 positions over 400
contracts (half of them per shard of two: the figures are per shard).

Two kinds of update: `all` — every contract moved (what a 20 ms flush of 100,000 ticks/s
over 400 contracts carries: ~2,000 ticks, every contract), and `one_pct` — 1% of the
contracts moved (a quiet market, or a feed flushing more often): its cost must grow with the
accounts that hold a moved contract, not with all accounts. Times are CPU time of the process.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from gateways.sim.accounts import _population
from gateways.sim.exchange import main_instruments
from infra.specs import load_contract_table
from rules.book import AccountBook
from rules.engine.evaluator import RuleEngine
from rules.engine.kinds import kind_of
from rules.engine.kinds.session import SessionGate
from rules.engine.spec import RuleSpec
from rules.sessions import SessionCalendar

NAME = "account-stages"
DESCRIPTION = "per-stage cost of one price update in a shard, 10k-200k accounts (in process)"
SIZES = (10_000, 50_000, 100_000, 200_000)
RULE = RuleSpec(id="account.risk_degree.warn", kind="threshold", metric="risk_degree", op=">",
                threshold=0.8, rearm=0.75, severity="warning")  # fmt: skip


def _book(n: int, contracts: list[str], table: Any, prices: dict[str, float]) -> AccountBook:
    book = AccountBook(table)
    for rec in _population(contracts, table, prices, n, 10, 7, ("grp", "sub", "unit"), 0.0):
        book.apply_snapshot(rec)
    return book


def _time(fn: Any, repeat: int) -> float:
    """Best of `repeat`, in CPU milliseconds of this process (time.process_time): on a shared
    machine the wall clock also counts the time other processes held the core."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return round(best * 1000, 3)


def measure(n_accounts: int, n_contracts: int = 400, repeat: int = 7) -> dict[str, Any]:
    table = load_contract_table()
    contracts = main_instruments(table, n_contracts)
    pre = np.array([table.spec(c).reference_price for c in contracts])
    prices = dict(zip(contracts, pre.tolist(), strict=True))
    book = _book(n_accounts // 2, contracts, table, prices)  # one shard of two
    book.set_prices(contracts, pre)
    book.mark()
    engine = RuleEngine([RULE], SessionGate(SessionCalendar.from_table(table)))
    assert kind_of(RULE.kind)  # the shard's default warn rule
    engine.resize(book.n_accounts)
    rng = np.random.default_rng(1)
    out: dict[str, Any] = {"accounts_per_shard": book.n_accounts,
                           "positions_per_shard": book.n_positions}  # fmt: skip
    for label, k in (("all", n_contracts), ("one_pct", max(1, n_contracts // 100))):
        pick = np.sort(rng.choice(n_contracts, k, replace=False))
        out[label] = _stages(book, engine, [contracts[i] for i in pick], pre[pick], rng, repeat)
    out["state_mb"] = round(book.state_bytes() / 1e6, 1)
    return out


def _stages(book: AccountBook, engine: RuleEngine, names: list[str], pre: np.ndarray,
            rng: np.random.Generator, repeat: int) -> dict[str, Any]:  # fmt: skip
    """Best-of-`repeat` milliseconds of each stage of one update moving `names`."""
    state: dict[str, Any] = {}

    def column(metric: str, rows: np.ndarray) -> np.ndarray:
        return getattr(book.figures, metric)[rows]

    def universe() -> np.ndarray:
        return np.flatnonzero(book.active[: book.n_accounts])

    def set_prices() -> None:
        state["contracts"] = book.set_prices(names, pre * (1 + rng.normal(0, 0.001, len(names))))

    def mark() -> None:
        state["rows"] = book.mark_contracts(state["contracts"])

    def evaluate() -> None:
        engine.evaluate(column, state["rows"], time.time(), universe=universe)

    stages = {"set_prices": _time(set_prices, repeat)}
    for name, fn in (("mark", mark), ("unpriced", book.unpriced_accounts),
                     ("evaluate", evaluate)):  # fmt: skip
        stages[name] = max(
            0.0, _time(lambda f=fn: (set_prices(), f()), repeat) - stages["set_prices"]
        )
    stages["total"] = sum(stages.values())
    return {"contracts_moved": len(names), "accounts_marked": int(state["rows"].size),
            "ms": {k: round(v, 3) for k, v in stages.items()}}  # fmt: skip


def run(quick: bool = False) -> dict[str, Any]:
    sizes = SIZES[:2] if quick else SIZES
    return {f"{n // 1000}k": measure(n) for n in sizes}


if __name__ == "__main__":
    import json
    import sys

    for n in [int(x) for x in sys.argv[1:]] or SIZES:
        print(json.dumps({f"{n // 1000}k": measure(n)}), flush=True)
