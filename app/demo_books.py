"""The demo's exposure books: price history from the simulator's warm-up, so their VaR is
filled from the first evaluation, and their VaR figures for the summary (app.demo)."""

from __future__ import annotations

import time
from typing import Any

import ray

from actors.context import Context
from app.supervisor import System
from gateways.sim.exchange import SimExchange
from infra.config import Config
from infra.specs import load_contract_table
from rules.display import yuan


def seed_price_history(system: System, exchange: SimExchange, cfg: Config) -> int:
    """The simulator's warm-up closes into every exposure book (a full VaR window of completed
    trading days before today, `futures_close` records: the same input a desk's price file
    gives), so the books' VaR is filled from the first evaluation. One call per book, at start.
    Returns the number of days."""
    table = load_contract_table(cfg.contracts_overrides)
    calendar = Context.build(cfg).calendar
    n = max(cfg.books.var_window, cfg.books.var_min_obs) + 1  # closes: one more than returns
    days = [calendar.previous_trading_day(calendar.trading_day(time.time()))]
    while len(days) < n:
        days.append(calendar.previous_trading_day(days[-1]))
    days.reverse()
    closes = exchange.daily_closes(n)
    first: dict[str, str] = {}  # commodity -> its first simulated contract
    for instrument in exchange.instruments:
        first.setdefault(table.spec(instrument).commodity, instrument)
    calls = []
    for commodity, book in system.books.items():
        instrument = first.get(commodity)
        if instrument is None:
            continue
        records = [
            {"kind": "futures_close", "commodity": commodity, "date": d.isoformat(), "price": p}
            for d, p in zip(days, closes[instrument], strict=True)
        ]
        calls.append(book.on_inputs.remote(records, source=f"sim warm-up ({instrument})"))
    for reply in ray.get(calls, timeout=60):
        if reply["rejected"]:
            raise RuntimeError(f"warm-up closes refused by a book: {reply['rejected'][0]}")
    return n


def book_var(system: System) -> dict[str, dict[str, Any]]:
    """Each book's VaR figures, recomputed and journaled (an operating_snapshot, which
    `fengkong report operating` reads) before the run ends."""
    names = list(system.books)
    figures = ray.get([system.books[c].snapshot.remote() for c in names], timeout=60)
    keys = ("var_95", "var_99", "var_obs", "var_method", "futures_value")
    return {c: {k: f.get(k) for k in keys} for c, f in zip(names, figures, strict=True)}


def var_line(books: dict[str, dict[str, Any]]) -> str:
    """How many books have their VaR (95%, one day) filled, and from how many scenario days."""
    filled = [b for b in books.values() if b["var_95"] is not None and b["var_95"] == b["var_95"]]
    if not filled:
        return f"0/{len(books)}"
    obs = min(int(b["var_obs"]) for b in filled)
    total = sum(float(b["var_95"]) for b in filled)
    return f"{len(filled)}/{len(books)} (VaR 95% from {obs} days, sum {yuan(total, 0)})"
