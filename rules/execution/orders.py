"""Carrying out approved proposals: plan, orders, gateway reports, status queries, re-pricing.

The order ref of leg i, attempt k is stable_id("order", proposal, i[, k]): the same after any
restart, so a resend can only ever be refused as a duplicate, never executed twice. Plans and
orders are journaled durably before they are sent (the Journal effect comes first).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rules.actions import AGGRESSION_TICKS, limit_price, moot_reason, plan_action
from rules.display import beijing, yuan
from rules.execution.closing import close, mark_record, record
from rules.execution.messages import (
    Effect,
    Journal,
    Notify,
    OrderReports,
    PlanApproved,
    Reply,
    SendOrders,
)
from rules.journal_records import (
    MarginCallRecord,
    OrderCancel,
    OrderReport,
    OrderSent,
    PlanRecord,
    TradingState,
)
from rules.model import ActionProposal, Alert, ProposalState, stable_id
from rules.orders import TERMINAL, WORKING, reprice_ticks

if TYPE_CHECKING:
    from rules.execution.machine import ExecutionMachine


def order_ref(proposal_id: str, leg: int, attempt: int = 0) -> str:
    if attempt == 0:
        return stable_id("order", proposal_id, leg, length=12)
    return stable_id("order", proposal_id, leg, attempt, length=12)


def wire(order: dict[str, Any]) -> dict[str, Any]:
    """Only the documented fields go on the wire: the typed Order (the journal keeps reasons)."""
    return OrderSent.from_record(order).to_order().to_record()


def _order(p: ActionProposal, ref: str, leg: int, attempt: int, now: float, **f: Any) -> dict:
    return record(
        OrderSent, p.account_id, ref, now, order_ref=ref, proposal_id=p.proposal_id,
        account_id=p.account_id, created_ts=now, leg=leg, attempt=attempt, **f,
    )  # fmt: skip


def on_plan(m: ExecutionMachine, msg: PlanApproved, now: float) -> list[Effect]:
    """Plan each approved proposal on fresh figures, journal plan and orders, then send."""
    st, s = m.state, m.settings
    props = [
        st.proposals[p] for p in msg.proposal_ids if st.proposals[p].state is ProposalState.APPROVED
    ]
    records: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    calls: list[Alert] = []
    results: dict[str, dict[str, Any]] = {}
    no_view: list[str] = []
    moot: list[tuple[str, str, dict[str, Any]]] = []
    for p in props:
        view = msg.views.get(p.account_id)
        if view is None:
            no_view.append(p.proposal_id)
            continue
        why = moot_reason(p.kind, p.target_risk_degree, view, s.target_tolerance)
        if why:  # recovered between the proposal and its approval: nothing to do, not "done"
            moot.append((p.proposal_id, why, view))
            results[p.proposal_id] = {"orders": 0, "explanation": why, "skipped": []}
            continue
        plan = plan_action(view, p.kind, p.target_risk_degree, s.margin_call_deadline_s)
        plan_rec = {k: v for k, v in plan.to_record().items() if k != "kind"}
        records.append(record(PlanRecord, p.account_id, p.proposal_id, now, plan_kind=plan.kind,
                              **plan_rec))  # fmt: skip
        records.append(mark_record(m, p.proposal_id, view, "plan", now))
        for i, leg in enumerate(plan.legs):
            records.append(_order(
                p, order_ref(p.proposal_id, i), i, 0, now, instrument=leg.instrument,
                direction=leg.direction, offset=leg.offset, volume=leg.volume,
                limit_price=leg.limit_price, reason=leg.reason,
            ))  # fmt: skip
        if plan.kind == "margin_call":
            deadline = now + plan.deadline_s
            records.append(record(MarginCallRecord, p.account_id, p.proposal_id, now,
                                  amount=plan.margin_call, deadline_ts=deadline))  # fmt: skip
            calls.append(_margin_call_alert(p, plan.margin_call, deadline, plan.explanation, now))
        if plan.kind == "freeze":
            records.append(record(TradingState, p.account_id, p.proposal_id, now, state="REDUCING"))
            commands.append(
                {"type": "trading_state", "account_id": p.account_id, "state": "REDUCING"}
            )
        results[p.proposal_id] = {
            "orders": len(plan.legs),
            "explanation": plan.explanation,
            "skipped": plan.skipped,
        }
    for r in records:
        st.apply(r)
    orders = [r for r in records if r["kind"] == OrderSent.KIND]
    m.unsent.update(o["ref"] for o in orders)
    m.counts["orders"] += len(orders)
    effects: list[Effect] = [
        Journal(tuple(records), durable=True),
        SendOrders(tuple([wire(o) for o in orders] + commands)),
    ]
    if calls:
        effects.append(Notify(tuple(calls)))
    for pid in no_view:
        effects += close(
            m, pid, ProposalState.FAILED, "NO_VIEW: the account is not on its shard", now
        )
    for pid, why, view in moot:
        effects += close(m, pid, ProposalState.MOOT, why, now, view)
    deadline = now + s.verify_timeout_s
    for pid, res in results.items():
        p = st.proposals[pid]
        res["state"] = p.state.value
        if p.state is ProposalState.MOOT:
            continue
        if p.kind == "margin_call":
            m.verifying[pid] = st.deadline.get(pid, deadline)
        elif not res["orders"]:  # nothing to trade (or a freeze): verify as it stands
            m.verifying[pid] = deadline
    effects.append(Reply({"results": results, "orders": len(orders)}))
    return effects


def _margin_call_alert(
    p: ActionProposal, amount: float, deadline: float, explanation: str, now: float
) -> Alert:
    when = beijing(deadline)
    return Alert(
        alert_id=stable_id("margin_call", p.proposal_id),
        rule_id="action.margin_call",
        key=p.account_id,
        severity="critical",
        title=f"追加保证金 margin call {p.account_id}: deposit {yuan(amount)} by {when}",
        value=amount,
        threshold=p.target_risk_degree,
        created_ts=now,
        ingress_ts=p.created_ts,
        dimension="margin_call",
        attributes={"proposal_id": p.proposal_id, "explanation": explanation},
    )


def on_reports(m: ExecutionMachine, msg: OrderReports, now: float) -> list[Effect]:
    """Gateway reports advance orders and open the way to verification."""
    st, s = m.state, m.settings
    records: list[dict[str, Any]] = []
    resend: list[dict[str, Any]] = []
    query: list[dict[str, Any]] = []
    for r in msg.reports:
        if r.get("status") == "trading_state":
            records += _state_acked(m, r, now)
            continue
        ref = r.get("order_ref")
        order = st.orders.get(ref) if isinstance(ref, str) else None
        if order is None:
            continue  # another executor's order
        body = {k: v for k, v in r.items() if k not in ("kind", "actor", "key", "ref", "v")}
        body["report_ts"] = body.pop("ts", now)
        rec = record(OrderReport, order["account_id"], ref, now, **_known(body))
        before = (order["status"], order["filled"])
        follow = st.order_report(OrderReport.from_record(rec))
        changed = before != (order["status"], order["filled"])
        if changed or r.get("status") in ("duplicate", "unknown", "rejected"):
            records.append(rec)
        if follow == "resend":
            resend.append(wire(order))
        elif follow == "query":
            query.append({"type": "query", "order_ref": ref})
        if not changed:
            continue
        pid = order["proposal_id"]
        if order["status"] == "cancelled" and order.get("cancel_reason") == "REPRICE":
            m.reprice.add(ref)
        elif order["status"] in TERMINAL and st.orders_done(pid):
            p = st.proposals[pid]
            if p.state is ProposalState.EXECUTING and pid not in m.verifying:
                m.verifying[pid] = now + s.verify_timeout_s
    m.counts["reports"] += len(msg.reports)
    m.counts["resent"] += len(resend)
    return [Journal(tuple(records)), SendOrders(tuple(resend + query))]


def _known(body: dict[str, Any]) -> dict[str, Any]:
    fields = OrderReport.__dataclass_fields__
    return {k: v for k, v in body.items() if k in fields}


def _state_acked(m: ExecutionMachine, report: dict[str, Any], now: float) -> list[dict[str, Any]]:
    account = report.get("account_id")
    out = []
    for p in m.state.by_state(ProposalState.EXECUTING):
        if p.kind == "freeze" and p.account_id == account:
            rec = record(TradingState, account, p.proposal_id, now, state=report.get("state"),
                         acked=True)  # fmt: skip
            m.state.apply(rec)
            m.verifying[p.proposal_id] = now
            out.append(rec)
    return out


def orders_round(m: ExecutionMachine, now: float) -> list[Effect]:
    """Open orders: a status query when the gateway has been silent, a cancel when unfilled."""
    st, s = m.state, m.settings
    queries, cancels, records = [], [], []
    for ref, o in st.orders.items():
        if o["status"] in TERMINAL:
            continue
        p = st.proposals.get(o["proposal_id"])
        if p is None or p.state is not ProposalState.EXECUTING or ref in m.unsent:
            continue
        if now - max(o["report_ts"], o.get("query_ts", 0.0)) >= s.query_after_s and (
            o["status"] == "submitted" or o["report_ts"] == 0.0
        ):
            o["query_ts"] = now
            queries.append({"type": "query", "order_ref": ref})
        if (
            o["status"] in WORKING
            and "cancel_reason" not in o
            and now - o["sent_ts"] >= s.reprice_after_s
        ):
            why = "REPRICE" if o.get("attempt", 0) < s.max_reprices else "GIVE_UP"
            rec = record(OrderCancel, o["account_id"], ref, now, reason=why)
            st.apply(rec)
            records.append(rec)
            cancels.append({"type": "cancel", "order_ref": ref})
    m.counts["queries"] += len(queries)
    m.counts["cancels"] += len(cancels)
    return [Journal(tuple(records)), SendOrders(tuple(queries + cancels))]


def replacements(m: ExecutionMachine, views: dict[str, Any], now: float) -> list[Effect]:
    """Orders cancelled for re-pricing come back further through the market."""
    st, s = m.state, m.settings
    todo = [st.orders[r] for r in sorted(m.reprice) if r in st.orders]
    m.reprice.clear()
    records = []
    for o in todo:
        if o["volume"] - o["filled"] <= 0:
            continue
        p = st.proposals[o["proposal_id"]]
        view = views.get(o["account_id"])
        if view is None and p.state is ProposalState.EXECUTING:
            m.reprice.add(o["order_ref"])  # cancelled after this tick's views were fetched
            continue
        pos = next(
            (x for x in (view or {}).get("positions", ())
             if x["instrument"] == o["instrument"]
             and (x["direction"] == "long") == (o["direction"] == "short")),
            None,
        )  # fmt: skip
        if pos is None or p.state is not ProposalState.EXECUTING:
            continue
        attempt = int(o.get("attempt", 0)) + 1
        price = limit_price(
            o["direction"] == "short", pos["last"], pos.get("tick_size", 0.0) or 0.0,
            pos.get("upper_limit", math.nan), pos.get("lower_limit", math.nan),
            reprice_ticks(AGGRESSION_TICKS, attempt),
        )  # fmt: skip
        volume = min(o["volume"] - o["filled"], pos["volume"])
        ref = order_ref(p.proposal_id, o["leg"], attempt)
        if ref in st.orders or volume <= 0:
            continue
        rec = _order(
            p, ref, o["leg"], attempt, now, instrument=o["instrument"], direction=o["direction"],
            offset=o["offset"], volume=volume, limit_price=price,
            reason=f"re-price {attempt}: {o['order_ref']} unfilled after {s.reprice_after_s:.0f} s",
        )  # fmt: skip
        st.apply(rec)
        m.unsent.add(ref)
        records.append(rec)
    m.counts["repriced"] += len(records)
    m.counts["orders"] += len(records)
    return [Journal(tuple(records), durable=True), SendOrders(tuple(wire(r) for r in records))]
