"""Order and fill progress of decided proposals, for the approvals page's live region.

Folded from the journal (`order`, `order_report`, `proposal_closed`: one AuditLog query per
refresh, never a call per proposal): each approved proposal with its orders — sent, partly
filled, filled, rejected or cancelled, with the fill price — until the Executor verifies it
(`proposal_closed`: done when the account is back under its target, or failed / moot). The
reports are applied with the Executor's own rule (`rules.orders.advance`), so a late or
duplicate report never moves an order backwards here either.
"""

from __future__ import annotations

from typing import Any

from rules.orders import advance

KINDS = ("order", "order_report", "proposal_closed")
WINDOW_S = 1800.0  # how far back the page looks for decided proposals
SHOWN = 40  # proposals listed (newest first); the rest are counted

# What a risk manager reads for an order's status (rules.orders.ORDER_STATES).
STATUS_WORD = {
    "submitted": "sent",
    "accepted": "sent",
    "partially_filled": "partly filled",
    "filled": "filled",
    "rejected": "rejected",
    "cancelled": "cancelled",
}


def fold(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Proposals with orders, newest first: {proposal_id, account_id, closed (state or ""),
    reason, risk_degree_after, last_ts, orders: [{order_ref, instrument, direction, offset,
    volume, status, filled, fill_price, reason}]}."""
    proposals: dict[str, dict[str, Any]] = {}
    orders: dict[str, dict[str, Any]] = {}
    for r in records:
        kind, pid = r.get("kind"), str(r.get("proposal_id") or r.get("ref") or "")
        if kind == "order":
            ref = str(r.get("order_ref") or r.get("ref") or "")
            if not ref or ref in orders:
                continue
            p = proposals.setdefault(pid, _proposal(pid, r))
            o = {"order_ref": ref, "instrument": r.get("instrument", ""),
                 "direction": r.get("direction", ""), "offset": r.get("offset", ""),
                 "volume": float(r.get("volume") or 0.0), "status": "submitted", "filled": 0.0,
                 "fill_price": None, "reason": ""}  # fmt: skip
            orders[ref] = o
            p["orders"].append(o)
            p["last_ts"] = max(p["last_ts"], float(r.get("ts") or 0.0))
        elif kind == "order_report":
            o = orders.get(str(r.get("order_ref") or r.get("ref") or ""))
            if o is None:
                continue
            step = advance(o["status"], o["filled"], str(r.get("status", "")),
                           float(r.get("filled") or 0.0))  # fmt: skip
            if step.changed:
                o["status"], o["filled"] = step.status, step.filled
                if r.get("price") and step.filled > 0:
                    o["fill_price"] = float(r["price"])
                if r.get("reason"):
                    o["reason"] = str(r["reason"])
            p = proposals.get(str(r.get("proposal_id") or ""))
            if p is not None:
                p["last_ts"] = max(p["last_ts"], float(r.get("ts") or 0.0))
        elif kind == "proposal_closed":
            p = proposals.get(str(r.get("ref") or ""))
            if p is not None:
                p["closed"] = str(r.get("state", ""))
                p["reason"] = str(r.get("reason", ""))
                p["risk_degree_after"] = r.get("risk_degree_after")
                p["last_ts"] = max(p["last_ts"], float(r.get("ts") or 0.0))
    return sorted(proposals.values(), key=lambda p: (p["closed"] != "", -p["last_ts"]))


def _proposal(pid: str, order: dict[str, Any]) -> dict[str, Any]:
    return {"proposal_id": pid, "account_id": order.get("account_id", ""), "closed": "",
            "reason": "", "risk_degree_after": None, "last_ts": 0.0, "orders": []}  # fmt: skip


def status_word(status: str) -> str:
    return STATUS_WORD.get(status, status)
