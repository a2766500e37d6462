"""Evaluate a stress scenario on an AccountBook: every account re-marked at the stressed prices.

The book is copied and the copy re-marked through the book's own marking path, so the stressed
figures follow exactly the rules the live figures follow (cost convention, margin price type,
broker markup, single-side margin): a stress test that computed margin its own way would disagree
with the live board on the very accounts that matter. A copy, not an in-place change and
restore, because a shard keeps marking its live book from other threads.

Per account the result gives the figures before and after, whether it is past the line
(risk degree ≥ 100% or equity ≤ 0), 穿仓 (equity < 0), the shortfall to the line (equity missing to
get back to 100%), the margin call back to a target risk degree, and whether it holds a contract
locked at its limit against it after the move (it cannot trade out). Roll-ups per hierarchy node
and per commodity come from the same arrays with `np.bincount`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rules.book import AccountBook
from rules.hierarchy import node_paths
from rules.stress.scenarios import Scenario, StressPrices, stressed_prices


@dataclass(slots=True)
class StressResult:
    """Per-account arrays (aligned with `account_ids`) and roll-ups of one scenario."""

    scenario: Scenario
    target: float
    account_ids: list[str]
    group_paths: list[str]
    prices: StressPrices
    equity_before: np.ndarray
    equity_after: np.ndarray
    margin_before: np.ndarray
    margin_after: np.ndarray
    risk_degree_before: np.ndarray
    risk_degree_after: np.ndarray
    past_line: np.ndarray
    bust: np.ndarray
    shortfall_to_line: np.ndarray
    margin_call: np.ndarray
    locked: np.ndarray
    loss_by_commodity: dict[str, float] = field(default_factory=dict)
    # Held contracts the scenario covers that had no price (no tick and no previous settlement
    # yet): they could not be moved, and a report that hid them would read as "no loss".
    unpriced: tuple[str, ...] = ()

    @property
    def loss(self) -> np.ndarray:
        return self.equity_before - self.equity_after

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "description": self.scenario.description,
            "accounts": len(self.account_ids),
            "past_line": int(self.past_line.sum()),
            "bust": int(self.bust.sum()),
            "locked": int(self.locked.sum()),
            "loss": float(self.loss.sum()),
            "shortfall_to_line": float(self.shortfall_to_line.sum()),
            "margin_call": float(self.margin_call.sum()),
            "target": self.target,
            "contracts_moved": int(self.prices.moved.sum()),
            "contracts_capped": int(self.prices.capped.sum()),
            "unpriced": list(self.unpriced),
        }

    def top(self, n: int = 20, by: str = "margin_call") -> list[dict[str, Any]]:
        """The accounts hit hardest as plain rows: past the line first, then by `by`, then loss."""
        keys = {"margin_call": self.margin_call, "loss": self.loss,
                "risk_degree": self.risk_degree_after, "shortfall": self.shortfall_to_line}  # fmt: skip
        if by not in keys:
            raise ValueError(f"--by must be one of {', '.join(keys)}, got {by!r}")
        key = np.nan_to_num(keys[by], posinf=np.finfo(float).max)
        order = np.lexsort((-self.loss, -key, ~self.past_line))
        return [self.row(int(i)) for i in order[:n]]

    def row(self, i: int) -> dict[str, Any]:
        return {
            "account_id": self.account_ids[i],
            "group_path": self.group_paths[i],
            "equity_before": float(self.equity_before[i]),
            "equity_after": float(self.equity_after[i]),
            "margin_after": float(self.margin_after[i]),
            "risk_degree_before": float(self.risk_degree_before[i]),
            "risk_degree_after": float(self.risk_degree_after[i]),
            "loss": float(self.loss[i]),
            "past_line": bool(self.past_line[i]),
            "bust": bool(self.bust[i]),
            "locked": bool(self.locked[i]),
            "shortfall_to_line": float(self.shortfall_to_line[i]),
            "margin_call": float(self.margin_call[i]),
        }

    def rollup(self) -> dict[str, dict[str, float]]:
        """Per hierarchy node: accounts, equity and margin after, past the line, calls, loss."""
        names: dict[str, int] = {}
        pair_account, pair_node = [], []
        for row, path in enumerate(self.group_paths):
            for node in node_paths(path):
                pair_account.append(row)
                pair_node.append(names.setdefault(node, len(names)))
        if not names:
            return {}
        acc = np.asarray(pair_account, dtype=np.int64)
        node = np.asarray(pair_node, dtype=np.int64)
        columns = {"accounts": np.ones(len(self.account_ids)), "equity_after": self.equity_after,
                   "margin_after": self.margin_after, "past_line": self.past_line.astype(float),
                   "bust": self.bust.astype(float), "margin_call": self.margin_call,
                   "loss": self.loss}  # fmt: skip
        sums = {
            k: np.bincount(node, weights=v[acc], minlength=len(names)) for k, v in columns.items()
        }
        return {n: {k: float(sums[k][i]) for k in columns} for n, i in names.items()}


def evaluate(book: AccountBook, scenario: Scenario, target: float = 0.8) -> StressResult:
    """Re-mark a copy of `book` at the scenario's prices; the book itself is not changed."""
    if not 0 < target <= 1:
        raise ValueError(f"target risk degree must be in (0, 1], got {target!r}")
    c = book.contracts
    nc = len(c)
    prices = stressed_prices(scenario, c.names[:nc], c.specs[:nc], c.last[:nc],
                             c.pre_settlement[:nc], c.upper_limit[:nc], c.lower_limit[:nc])  # fmt: skip
    stressed = copy.deepcopy(book)
    before = _figures(book)
    moved = np.isfinite(prices.after)
    names = [n for n, m in zip(c.names[:nc], moved, strict=True) if m]
    if names:
        stressed.set_prices(names, prices.after[moved])
    after = _figures(stressed)
    rows = np.flatnonzero(book.active[: book.n_accounts])
    equity, margin = after["equity"][rows], after["margin"][rows]
    past = (after["risk_degree"][rows] >= 1.0) | (equity <= 0)
    return StressResult(
        scenario=scenario,
        target=target,
        account_ids=[book.account_ids[r] for r in rows],
        group_paths=[book.group_paths[r] for r in rows],
        prices=prices,
        equity_before=before["equity"][rows],
        equity_after=equity,
        margin_before=before["margin"][rows],
        margin_after=margin,
        risk_degree_before=before["risk_degree"][rows],
        risk_degree_after=after["risk_degree"][rows],
        past_line=past,
        bust=equity < 0,
        shortfall_to_line=np.maximum(0.0, margin - equity),
        margin_call=np.maximum(0.0, margin / target - equity),
        locked=stressed.limit_locked_accounts()[rows],
        loss_by_commodity=_loss_by_commodity(book, prices),
        unpriced=_unpriced(book, prices),
    )


def _unpriced(book: AccountBook, prices: StressPrices) -> tuple[str, ...]:
    """Contracts held by an active account, covered by the scenario, with no price to move."""
    n = book.n_positions
    held = np.zeros(len(prices.instruments), dtype=bool)
    live = book.active[book.pos_account[:n]] & (book.pos["volume"][:n] != 0)
    held[book.pos_contract[:n][live]] = True
    stuck = held & prices.moved & ~np.isfinite(prices.after)
    return tuple(prices.instruments[i] for i in np.flatnonzero(stuck))


def _figures(book: AccountBook) -> dict[str, np.ndarray]:
    figures = book.mark()
    return {name: np.array(getattr(figures, name)) for name in ("equity", "margin", "risk_degree")}


def _loss_by_commodity(book: AccountBook, prices: StressPrices) -> dict[str, float]:
    """Loss per commodity over active accounts: −Σ units × Δprice (longs lose when prices fall)."""
    n = book.n_positions
    if n == 0:
        return {}
    contract = book.pos_contract[:n]
    delta = np.nan_to_num(prices.after - prices.before)[contract]
    units = book.pos["sign"][:n] * book.pos["volume"][:n] * book.pos["multiplier"][:n]
    active = book.active[book.pos_account[:n]]
    per_contract = np.bincount(contract, weights=-units * delta * active,
                               minlength=len(prices.instruments))  # fmt: skip
    out: dict[str, float] = {}
    for row, value in enumerate(per_contract):
        commodity = book.contracts.commodity[row]
        out[commodity] = out.get(commodity, 0.0) + float(value)
    return {k: v for k, v in sorted(out.items()) if v}


def merge_results(results: list[StressResult]) -> StressResult:
    """One result from the shards' results (each evaluated its own accounts on its own book).

    Account arrays are concatenated; the loss per commodity is summed; the prices are the first
    shard's (every shard sees the same market; a contract no shard holds was not moved anyway).
    """
    if not results:
        raise ValueError("no shard results to merge")
    first = results[0]
    if len(results) == 1:
        return first
    cat = {name: np.concatenate([getattr(r, name) for r in results]) for name in _ARRAYS}
    loss: dict[str, float] = {}
    for r in results:
        for k, v in r.loss_by_commodity.items():
            loss[k] = loss.get(k, 0.0) + v
    return StressResult(
        scenario=first.scenario,
        target=first.target,
        account_ids=[a for r in results for a in r.account_ids],
        group_paths=[g for r in results for g in r.group_paths],
        prices=first.prices,
        loss_by_commodity=dict(sorted(loss.items())),
        unpriced=tuple(sorted({u for r in results for u in r.unpriced})),
        **cat,
    )


_ARRAYS = ("equity_before", "equity_after", "margin_before", "margin_after", "risk_degree_before",
           "risk_degree_after", "past_line", "bust", "shortfall_to_line", "margin_call", "locked")  # fmt: skip
