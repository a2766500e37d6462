"""Roll-ups up the organisation: group → subsidiary → business unit → account (and strategies).

An account's group path "grpA/sub1/unit03" puts it in three nodes, one per level; a strategy
tag adds a node "strategy:NAME". Each shard sums its accounts per node with `np.bincount`; the
cluster-wide figure of a node is the sum over shards, from which its risk degree follows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

LEVELS = ("group", "subsidiary", "unit")
SUMMED = ("accounts", "equity", "margin", "exchange_margin", "available")


def node_paths(group_path: str, strategy: str = "") -> list[str]:
    """Every node an account belongs to, top level first."""
    parts = [p for p in group_path.split("/") if p][: len(LEVELS)]
    nodes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    if strategy:
        nodes.append(f"strategy:{strategy}")
    return nodes


def level_of(node: str) -> str:
    if node.startswith("strategy:"):
        return "strategy"
    return LEVELS[min(node.count("/"), len(LEVELS) - 1)]


class NodeIndex:
    """Node membership of account rows as a sparse (account, node) pair list, for bincount."""

    def __init__(self, memberships: Sequence[Sequence[str]]) -> None:
        self.names: list[str] = []
        ids: dict[str, int] = {}
        accounts, nodes = [], []
        # Accounts with the same nodes form a membership class (one per business unit and
        # strategy: a few hundred, whatever the accounts): per-position sums go to classes
        # first, then classes to their nodes, instead of every position to every node.
        classes: dict[tuple[str, ...], int] = {}
        account_class = []
        for row, paths in enumerate(memberships):
            account_class.append(classes.setdefault(tuple(paths), len(classes)))
            for path in paths:
                node = ids.setdefault(path, len(ids))
                if node == len(self.names):
                    self.names.append(path)
                accounts.append(row)
                nodes.append(node)
        self.pair_account = np.asarray(accounts, dtype=np.int64)
        self.pair_node = np.asarray(nodes, dtype=np.int64)
        self.account_class = np.asarray(account_class, dtype=np.int64)
        self.n_classes = len(classes)
        members = [(c, ids[path]) for key, c in classes.items() for path in key]
        self.class_pair = np.asarray(members, dtype=np.int64).reshape(-1, 2)

    def sums(self, values: np.ndarray, weights_mask: np.ndarray) -> np.ndarray:
        """Per node: sum of `values` over member accounts where `weights_mask` holds."""
        w = values[self.pair_account] * weights_mask[self.pair_account]
        return np.bincount(self.pair_node, weights=w, minlength=len(self.names))


def rollup(
    index: NodeIndex, active: np.ndarray, figures: Mapping[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Sums of one shard's active accounts per node."""
    if not index.names:
        return {}
    mask = active.astype(np.float64)
    columns = {"accounts": index.sums(np.ones(active.shape[0]), mask)}
    for name in SUMMED[1:]:
        columns[name] = index.sums(figures[name], mask)
    return {
        node: {name: float(columns[name][i]) for name in SUMMED}
        for i, node in enumerate(index.names)
    }


def merge(rollups: Iterable[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Cluster-wide node figures from every shard's roll-up, with risk degrees."""
    total: dict[str, dict[str, float]] = {}
    for part in rollups:
        for node, sums in part.items():
            acc = total.setdefault(node, dict.fromkeys(SUMMED, 0.0))
            for name in SUMMED:
                acc[name] += sums.get(name, 0.0)
    for node, acc in total.items():
        equity = acc["equity"]
        acc["risk_degree"] = acc["margin"] / equity if equity > 0 else float("inf")
        acc["exchange_risk_degree"] = (
            acc["exchange_margin"] / equity if equity > 0 else float("inf")
        )
        acc["level"] = level_of(node)  # type: ignore[assignment]
    return total


def exposure_rollup(
    index: NodeIndex,
    pos_account: np.ndarray,
    pos_commodity: np.ndarray,
    units: np.ndarray,
    commodities: Sequence[str],
) -> dict[str, dict[str, float]]:
    """Net futures exposure (physical units) per node and commodity.

    Each position counts once in every node of its account: positions are summed per
    (membership class, commodity) with one bincount, then each class's sums are added to its
    nodes (small arrays). Units are whole numbers (lots × multiplier), so the order of the
    additions cannot change a sum.
    """
    if not index.names or pos_account.size == 0:
        return {}
    n_comm, n_cls = len(commodities), index.n_classes
    known = pos_account < index.account_class.size  # an account with no node counts nowhere
    cls = np.full(pos_account.size, n_cls, dtype=np.int64)
    cls[known] = index.account_class[pos_account[known]]
    per_class = np.bincount(cls * n_comm + pos_commodity, weights=units,
                            minlength=(n_cls + 1) * n_comm).reshape(n_cls + 1, n_comm)  # fmt: skip
    sums = np.zeros((len(index.names), n_comm))
    if index.class_pair.size:
        np.add.at(sums, index.class_pair[:, 1], per_class[index.class_pair[:, 0]])
    out: dict[str, dict[str, float]] = {}
    for i, node in enumerate(index.names):
        nz = np.flatnonzero(sums[i])
        out[node] = {commodities[j]: float(sums[i, j]) for j in nz}
    return out
