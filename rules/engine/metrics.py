"""Which metrics each place can evaluate, so a rules file is checked against them at load."""

from __future__ import annotations

from rules.account_math import FIGURES
from rules.exposure import LIMIT_METRICS

# Account columns that are not marked figures but move with account events (transfers, fills).
ACCOUNT_COLUMNS = ("pre_balance", "deposit", "withdraw", "close_profit", "commission",
                   "frozen_margin", "frozen_commission")  # fmt: skip
ACCOUNT_METRICS = (*FIGURES, *ACCOUNT_COLUMNS)
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
