"""Read-only views of an AccountShard's book: hierarchy roll-ups and the riskiest accounts.

Pure functions of the book (numpy over its columns), kept apart from the shard so the actor's
file reads as its messages; the shard calls them under its lock.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.account_math import FIGURES
from rules.book import AccountBook
from rules.hierarchy import NodeIndex, exposure_rollup, level_of, node_paths, rollup

ASCENDING = ("liquidation_distance", "available", "equity", "static_equity")
ROLLED_FIGURES = ("equity", "margin", "exchange_margin", "available")


def node_index(book: AccountBook, strategies: dict[int, str]) -> NodeIndex:
    """Every account row's hierarchy nodes (group path, then its strategy)."""
    return NodeIndex(
        [node_paths(book.group_paths[r], strategies.get(r, "")) for r in range(book.n_accounts)]
    )


def rollup_of(book: AccountBook, nodes: NodeIndex) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sums of the figures per node, and net futures exposure (units) per node and commodity."""
    figures = book.ensure_marked()
    n = book.n_positions
    active = book.active[: book.n_accounts]
    sums = rollup(nodes, active, {name: getattr(figures, name) for name in ROLLED_FIGURES})
    commodities = sorted(set(book.contracts.commodity))
    code = {c: i for i, c in enumerate(commodities)}
    pos_commodity = np.array(
        [code[book.contracts.commodity[c]] for c in range(len(book.contracts))], dtype=np.int64
    )
    units = book.pos["sign"][:n] * book.pos["volume"][:n] * book.pos["multiplier"][:n]
    units = units * active[book.pos_account[:n]]
    exposure = exposure_rollup(
        nodes,
        book.pos_account[:n],
        pos_commodity[book.pos_contract[:n]] if n else pos_commodity[:0],
        units,
        commodities,
    )
    return sums, exposure


def unit_exposure_by_commodity(exposure: dict[str, dict[str, float]]) -> dict[str, Any]:
    """{commodity: {business unit node: units}} from a roll-up's exposure per node."""
    by_commodity: dict[str, dict[str, float]] = {}
    for node, per_commodity in exposure.items():
        if level_of(node) == "unit":
            for commodity, units in per_commodity.items():
                by_commodity.setdefault(commodity, {})[node] = units
    return by_commodity


def top_of(book: AccountBook, n: int, by: str, group: str) -> list[dict[str, Any]]:
    """The n riskiest accounts by a figure (largest first; for distances and money figures,
    smallest first), optionally within a node of the hierarchy."""
    if by not in FIGURES:
        raise ValueError(f"unknown figure {by!r}; one of {FIGURES}")
    if book.n_accounts == 0:
        return []
    figures = book.ensure_marked()  # a query may come before any price
    values = getattr(figures, by)
    rows = np.flatnonzero(book.active[: book.n_accounts])
    if group:
        prefix = group.rstrip("/") + "/"
        rows = np.array(
            [r for r in rows if (book.group_paths[r] + "/").startswith(prefix)], dtype=np.int64
        )
    keys = values[rows] if by in ASCENDING else -values[rows]
    order = rows[np.argsort(keys, kind="stable")[:n]]
    return [
        {
            "account_id": book.account_ids[r],
            "group_path": book.group_paths[r],
            **{name: float(getattr(figures, name)[r]) for name in FIGURES},
        }
        for r in order
    ]
