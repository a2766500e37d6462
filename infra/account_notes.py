"""What an account drill-down says in words, beside its figures (`fengkong accounts show`).

An account whose equity is ≤ 0 is past its liquidation line whatever the ratio says: the book
reports its risk degree as +inf (figures, rules `risk_degree > x` fire, sorting puts it first),
and a person reads "past the line" rather than "inf%". Limit-locked holdings (contracts at
their limit against the account, which cannot be traded out) are named with the margin stuck.
"""

from __future__ import annotations

import json
import math
from typing import Any


def risk_text(value: float) -> str:
    """A risk degree for a table cell: a percentage, or PAST LINE when equity is ≤ 0 (inf)."""
    return "PAST LINE" if math.isinf(value) else f"{value:.1%}"


def account_notes(view: dict[str, Any]) -> list[str]:
    """Lines under the JSON of one account: the liquidation line and the locked holdings."""
    notes = []
    if math.isinf(view.get("risk_degree", 0.0)) or view.get("equity", 1.0) <= 0:
        notes.append(f"past the liquidation line: equity {view.get('equity', 0.0):,.2f} ≤ 0")
    locked = [d["instrument"] for d in view.get("contract_distances", ()) if d.get("limit_locked")]
    if locked or view.get("locked_contracts", 0):
        stuck = view.get("locked_margin")
        margin = f", margin stuck {stuck:,.2f}" if isinstance(stuck, int | float) else ""
        notes.append(f"locked at limit against the account: {', '.join(locked) or '?'}{margin}")
    return notes


def account_text(view: dict[str, Any]) -> str:
    """The drill-down of one account: its view as JSON (inf as Infinity), then the notes."""
    return "\n".join([json.dumps(view, indent=2, ensure_ascii=False, default=str),
                      *account_notes(view)])  # fmt: skip
