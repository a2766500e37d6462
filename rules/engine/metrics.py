"""Which metrics each place can evaluate, so a rules file is checked against them at load.

Account metrics are the book's figures (rules.account_math.FIGURES: equity, risk_degree, ...,
locked_contracts and locked_margin, the holdings locked at their limit against the account),
its event-driven columns, and derived metrics computed from the figures where a rule reads
better as one threshold than as a composite:

- `locked_risk_degree`: the risk degree of an account holding a contract locked at its limit
  against it, 0 for the others — "above 90% and cannot get out" is `locked_risk_degree > 0.9`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.account_math import FIGURES
from rules.exposure import LIMIT_METRICS

# Account columns that are not marked figures but move with account events (transfers, fills).
ACCOUNT_COLUMNS = ("pre_balance", "deposit", "withdraw", "close_profit", "commission",
                   "frozen_margin", "frozen_commission")  # fmt: skip
DERIVED_METRICS = ("locked_risk_degree",)
ACCOUNT_METRICS = (*FIGURES, *ACCOUNT_COLUMNS, *DERIVED_METRICS)
BEHAVIOUR_METRICS = ("orders", "cancels", "trades", "cancel_ratio", "self_trades")
NODE_METRICS = ("risk_degree", "exchange_risk_degree", "equity", "margin", "exchange_margin",
                "available", "accounts")  # fmt: skip
BOOK_METRICS = LIMIT_METRICS
FUND_FLOW_METRICS = ("transfer", "day_outflow")


def metrics_for(scope: str) -> tuple[str, ...]:
    if scope == "account":
        return ACCOUNT_METRICS
    if scope in ("group", "subsidiary", "unit", "strategy"):
        return NODE_METRICS
    if scope in ("commodity", "business_unit"):
        return BOOK_METRICS
    return ()


def derived_metric(name: str, figures: Any, rows: np.ndarray) -> np.ndarray:
    """A derived account metric (DERIVED_METRICS) of `rows` from the marked figures."""
    if name == "locked_risk_degree":
        locked = figures.locked_contracts[rows] > 0
        return np.where(locked, figures.risk_degree[rows], 0.0)
    raise KeyError(f"unknown derived metric {name!r}; one of {DERIVED_METRICS}")
