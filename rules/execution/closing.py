"""Closing a proposal (done, failed with its reasons, rejected, expired) and the figures journaled
with it. Shared by the decision, order and clock steps of the machine; pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rules.display import percent
from rules.execution.messages import Closed, Effect, Journal
from rules.journal_records import AccountMark, JournalRecord, ProposalClosed
from rules.model import ActionProposal, ProposalState

if TYPE_CHECKING:
    from rules.execution.machine import ExecutionMachine

ACTOR = "Executor"


def record(
    cls: type[JournalRecord], key: str, ref: str, now: float, **fields: Any
) -> dict[str, Any]:
    """One of the Executor's journal records, as the journal stores it."""
    return cls(actor=ACTOR, key=key, ref=ref, ts=now, **fields).to_record()


def mark_record(
    m: ExecutionMachine, pid: str, view: dict[str, Any], phase: str, now: float
) -> dict[str, Any]:
    """An account's figures for the record (the replay report charts them)."""
    m.last_mark[view["account_id"]] = now
    return record(
        AccountMark, view["account_id"], pid, now, phase=phase,
        risk_degree=view["risk_degree"], equity=view["equity"], margin=view["margin"],
        available=view.get("available"),
        prices={x["instrument"]: x["last"] for x in view["positions"]},
        volumes={f"{x['instrument']}.{x['direction']}": x["volume"] for x in view["positions"]},
    )  # fmt: skip


def close(
    m: ExecutionMachine,
    pid: str,
    state: ProposalState,
    reason: str,
    now: float,
    view: dict[str, Any] | None = None,
    decided_by: str = "",
) -> list[Effect]:
    """The proposal_closed record (applied at once, journaled fire-and-forget) and its metrics."""
    st = m.state
    p: ActionProposal = st.proposals[pid]
    if pid in st.closed:
        m.verifying.pop(pid, None)
        return []
    orders = [st.orders[r] for r in st.orders_of.get(pid, ())]
    fills = [o["fill_ts"] for o in orders if o.get("fill_ts")]
    figures: dict[str, Any] = {}
    if view:
        figures = {
            "risk_degree_after": view["risk_degree"],
            "equity_after": view["equity"],
            "margin_after": view["margin"],
            "available_after": view.get("available"),
            "prices_after": {x["instrument"]: x["last"] for x in view["positions"]},
            "positions_after": [
                {k: x[k] for k in ("instrument", "direction", "volume")} for x in view["positions"]
            ],
        }
    rec = record(
        ProposalClosed, p.account_id, pid, now, state=state.value, reason=reason,
        proposal_kind=p.kind, alert_id=p.alert_id, filled=sum(o["filled"] for o in orders),
        orders=len(orders), decided_by=decided_by or p.decided_by,
        proposal_to_fill_ms=(max(fills) - p.created_ts) * 1000 if fills else None,
        decision_to_fill_ms=(max(fills) - p.decided_ts) * 1000 if fills and p.decided_ts else None,
        **figures,
    )  # fmt: skip
    st.apply(rec)
    m.verifying.pop(pid, None)
    m.counts[state.value] += 1
    records = [rec]
    if view:
        records.append(mark_record(m, pid, view, "closed", now))
    closed = Closed(
        pid,
        state.value,
        proposal_to_fill_ms=(max(fills) - p.created_ts) * 1000 if fills else None,
        decision_to_close_ms=(now - p.decided_ts) * 1000
        if p.decided_ts and state is not ProposalState.REJECTED
        else None,
    )
    return [Journal(tuple(records)), closed]


def why_not(m: ExecutionMachine, p: ActionProposal, view: dict[str, Any] | None) -> str:
    """The reasons a proposal failed, upper-case codes first."""
    plan = m.state.plans.get(p.proposal_id, {})
    rd = (view or {}).get("risk_degree", float("nan"))
    orders = [m.state.orders[r] for r in m.state.orders_of.get(p.proposal_id, ())]
    unfilled = [o["order_ref"] for o in orders if o["status"] != "filled"]
    if p.kind == "margin_call":
        return (
            f"MARGIN_CALL_UNMET: risk degree {percent(rd, 2)} > {percent(p.target_risk_degree, 2)}"
            " at the deadline"
        )
    if p.kind == "freeze":
        return "TRADING_STATE_NOT_CONFIRMED: the gateway did not confirm REDUCING"
    tol = m.settings.target_tolerance
    parts = [
        f"TARGET_NOT_MET: risk degree {percent(rd, 2)} > target {percent(p.target_risk_degree, 2)}"
        f" (tolerance {tol * 100:.2f} pp)"
    ]
    if plan.get("skipped"):
        parts.append(f"LIMIT_LOCKED: {len(plan['skipped'])} position(s) could not be traded")
    if unfilled:
        parts.append(f"UNFILLED: {len(unfilled)} order(s) not filled")
    return "; ".join(parts)
