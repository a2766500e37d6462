"""The order state machine: what a gateway report may do to an order we sent.

Reports arrive over PUB/SUB and may come late, twice, or out of order (a status query answered
after the fill); a report that would move an order backwards is ignored, so a replay of the
journal or a duplicate report leaves the same state. Pure: the Executor and its rebuild from
the journal apply the same function.

    submitted ─▶ accepted ─▶ partially_filled ─▶ filled
        │            │              │
        └────────────┴──────────────┴─▶ cancelled / rejected

`duplicate` (the gateway already holds this order_ref) and `unknown` (a status query for a ref
it never saw) are not states: the first says "it is there, ask for its status", the second
"it never arrived, send it again with the same ref".
"""

from __future__ import annotations

from dataclasses import dataclass

ORDER_STATES = ("submitted", "accepted", "partially_filled", "filled", "cancelled", "rejected")
TERMINAL = frozenset({"filled", "cancelled", "rejected"})
WORKING = frozenset({"accepted", "partially_filled"})
_RANK = {"submitted": 0, "accepted": 1, "partially_filled": 2}
NOT_STATES = ("duplicate", "unknown")


@dataclass(frozen=True, slots=True)
class Step:
    status: str
    filled: float
    changed: bool
    follow_up: str = ""  # "query": ask the gateway; "resend": send again with the same ref


def advance(status: str, filled: float, report_status: str, report_filled: float) -> Step:
    """The order's next (status, filled) after a report; `changed` False when it was stale."""
    if report_status == "duplicate":
        return Step(status, filled, False, "" if status in TERMINAL else "query")
    if report_status == "unknown":
        return Step(status, filled, False, "resend" if status == "submitted" else "")
    if report_status not in ORDER_STATES or status in TERMINAL:
        return Step(status, filled, False)
    report_filled = max(filled, float(report_filled or 0.0))
    if report_status in TERMINAL:
        return Step(report_status, report_filled, True)
    if _RANK[report_status] < _RANK[status] or (
        report_status == status and report_filled <= filled
    ):
        return Step(status, filled, False)
    return Step(report_status, report_filled, True)


def reprice_ticks(base_ticks: int, attempt: int) -> int:
    """Each re-price goes further through the market: 5, 10, 20, 40 ticks …"""
    return base_ticks * (2**attempt if attempt > 0 else 1)
