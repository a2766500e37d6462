"""The Executor's state, rebuilt from its own journal records (typed: rules.journal_records).

Every change the Executor makes is a journal record first and a change of this state second,
through the same `apply`: so the live path and the restart path (read the records back, apply
them in order) cannot disagree. Nothing here talks to Ray or sockets.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from rules.approval import Approval, ApprovalState, Stage
from rules.journal_records import (
    ENVELOPE,
    ApprovalEscalated,
    DecisionRecord,
    JournalRecord,
    MarginCallRecord,
    OrderCancel,
    OrderReport,
    OrderSent,
    PlanRecord,
    ProposalClosed,
    ProposalRecord,
    Refusal,
    TradingState,
)
from rules.model import ActionProposal, ProposalState
from rules.orders import TERMINAL, advance

RESUME_TYPES: tuple[type[JournalRecord], ...] = (
    ProposalRecord,
    DecisionRecord,
    Refusal,
    ApprovalEscalated,
    PlanRecord,
    OrderSent,
    OrderCancel,
    OrderReport,
    MarginCallRecord,
    TradingState,
    ProposalClosed,
)
RESUME_KINDS = tuple(t.KIND for t in RESUME_TYPES)
_BY_KIND = {t.KIND: t for t in RESUME_TYPES}
_ENVELOPE = frozenset(ENVELOPE) - {"ts"}
CLOSED = (
    ProposalState.DONE,
    ProposalState.FAILED,
    ProposalState.REJECTED,
    ProposalState.MOOT,
)


@dataclass
class ExecState:
    proposals: dict[str, ActionProposal] = field(default_factory=dict)
    approval: dict[str, ApprovalState] = field(default_factory=dict)
    proposer: dict[str, str] = field(default_factory=dict)
    group_of: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    open_group: dict[tuple[str, float], tuple[str, float]] = field(default_factory=dict)
    preview: dict[str, dict[str, Any]] = field(default_factory=dict)
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders_of: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    requests: set[str] = field(default_factory=set)
    closed: dict[str, dict[str, Any]] = field(default_factory=dict)
    deadline: dict[str, float] = field(default_factory=dict)  # margin calls
    state_acked: set[str] = field(default_factory=set)  # freeze proposals the gateway confirmed
    applied: int = 0

    # ---- grouping ------------------------------------------------------------------------------

    def group_for(self, kind: str, target: float, ts: float, gap_s: float, pid: str) -> str:
        """Proposals of one kind and target less than `gap_s` apart share a batch group, so one
        market-wide shock is one group to approve or reject in one step."""
        key = (kind, round(target, 6))
        current = self.open_group.get(key)
        if current is not None and ts - current[1] <= gap_s:
            return current[0]
        return f"g-{kind}-{pid[:8]}"

    # ---- apply ----------------------------------------------------------------------------------

    def apply(self, rec: dict[str, Any] | JournalRecord) -> None:
        """One journal record (a dict as read back, or the typed record) changes the state."""
        typed = rec if isinstance(rec, JournalRecord) else _parse(rec)
        handler = self._HANDLERS.get(type(typed)) if typed is not None else None
        if handler is not None:
            handler(self, typed)
            self.applied += 1

    def _on_proposal(self, rec: ProposalRecord) -> None:
        pid = rec.ref
        if pid in self.proposals:
            return
        p = ActionProposal(
            proposal_id=pid,
            alert_id=rec.alert_id,
            account_id=rec.account_id,
            kind=rec.proposal_kind,
            target_risk_degree=float(rec.target_risk_degree),
            created_ts=float(rec.created_ts),
            reason=rec.reason,
        )
        self.proposals[pid] = p
        self.proposer[pid] = rec.proposed_by
        stages = tuple(_stage(s) for s in rec.stages)
        self.approval[pid] = ApprovalState(
            pid, p.kind, float(rec.size), self.proposer[pid],
            stages or (Stage("risk desk"),), p.created_ts, stage_started_ts=p.created_ts,
        )  # fmt: skip
        gid = rec.group_id
        self.group_of[pid] = gid
        self.groups[gid].append(pid)
        self.open_group[(p.kind, round(p.target_risk_degree, 6))] = (gid, p.created_ts)
        self.preview[pid] = rec.preview

    def _on_decision(self, rec: DecisionRecord) -> None:
        pid = rec.ref
        p, st = self.proposals.get(pid), self.approval.get(pid)
        if rec.request_id:
            self.requests.add(rec.request_id)
        if p is None or st is None:
            return
        approvals = st.approvals
        if rec.decision == "approve":
            approvals += (Approval(int(rec.stage_index), rec.user, rec.ts),)
        stage_after = int(rec.stage_after)
        after = replace(
            st,
            approvals=approvals,
            stage=stage_after,
            status=rec.status_after or st.status,
            stage_started_ts=rec.ts if stage_after != st.stage else st.stage_started_ts,
        )
        self.approval[pid] = after
        if after.status == "approved" and p.state is ProposalState.PENDING:
            p.state, p.decided_by, p.decided_ts = ProposalState.APPROVED, rec.user, rec.ts
        elif after.status == "rejected" and p.state is ProposalState.PENDING:
            p.state, p.decided_by, p.decided_ts = ProposalState.REJECTED, rec.user, rec.ts

    def _on_refusal(self, rec: Refusal) -> None:
        if rec.request_id:
            self.requests.add(rec.request_id)

    def _on_approval_escalated(self, rec: ApprovalEscalated) -> None:
        for pid in rec.proposal_ids:
            st = self.approval.get(pid)
            if st is not None and st.stage not in st.escalated:
                self.approval[pid] = replace(st, escalated=st.escalated + (st.stage,))

    def _on_plan(self, rec: PlanRecord) -> None:
        pid = rec.ref
        self.plans[pid] = rec.to_record()
        p = self.proposals.get(pid)
        if p is not None and p.state is ProposalState.APPROVED:
            p.state = ProposalState.EXECUTING

    def _on_order(self, rec: OrderSent) -> None:
        ref = rec.ref
        if ref in self.orders:
            return
        order = {k: v for k, v in rec.to_record().items() if k not in _ENVELOPE}
        order.update(status="submitted", filled=0.0, sent_ts=rec.ts, report_ts=0.0)
        order["order_ref"] = rec.order_ref or ref
        self.orders[ref] = order
        self.orders_of[order["proposal_id"]].append(ref)

    def _on_order_cancel(self, rec: OrderCancel) -> None:
        order = self.orders.get(rec.ref)
        if order is not None:
            order["cancel_reason"] = rec.reason
            order["cancel_ts"] = rec.ts

    def order_report(self, rec: OrderReport) -> str:
        """Returns the follow-up the report asks for ("", "query", "resend")."""
        order = self.orders.get(rec.ref)
        if order is None:
            return ""
        before = order["filled"]
        step = advance(order["status"], order["filled"], rec.status, rec.filled)
        order["report_ts"] = rec.ts
        if step.changed:
            order["status"], order["filled"] = step.status, step.filled
            if rec.price:
                order["fill_price"] = rec.price
            if rec.reason:
                order["reason_reported"] = rec.reason
            if step.status == "filled" or step.filled > before:
                order["fill_ts"] = rec.report_ts or rec.ts
        return step.follow_up

    def _on_margin_call(self, rec: MarginCallRecord) -> None:
        self.deadline[rec.ref] = float(rec.deadline_ts)

    def _on_trading_state(self, rec: TradingState) -> None:
        if rec.acked:
            self.state_acked.add(rec.ref)

    def _on_proposal_closed(self, rec: ProposalClosed) -> None:
        pid = rec.ref
        p = self.proposals.get(pid)
        self.closed[pid] = rec.to_record()
        if p is not None:
            p.state = ProposalState(rec.state)
            if rec.decided_by and not p.decided_by:
                p.decided_by, p.decided_ts = rec.decided_by, rec.ts

    _HANDLERS: ClassVar[dict[type, Callable[[ExecState, Any], Any]]] = {}

    def prune(self, before_ts: float) -> int:
        """Forget proposals closed before `before_ts` (the journal keeps them); the request ids
        stay, so a replay is refused however old."""
        old = [pid for pid, rec in self.closed.items() if rec["ts"] < before_ts]
        for pid in old:
            self.proposals.pop(pid, None)
            self.approval.pop(pid, None)
            self.proposer.pop(pid, None)
            self.preview.pop(pid, None)
            self.plans.pop(pid, None)
            self.deadline.pop(pid, None)
            self.state_acked.discard(pid)
            self.closed.pop(pid, None)
            gid = self.group_of.pop(pid, "")
            members = self.groups.get(gid)
            if members is not None and pid in members:
                members.remove(pid)
                if not members:
                    del self.groups[gid]
            for ref in self.orders_of.pop(pid, ()):
                self.orders.pop(ref, None)
        return len(old)

    # ---- questions -----------------------------------------------------------------------------

    def orders_done(self, pid: str) -> bool:
        return all(self.orders[r]["status"] in TERMINAL for r in self.orders_of.get(pid, ()))

    def filled(self, pid: str) -> float:
        return sum(self.orders[r]["filled"] for r in self.orders_of.get(pid, ()))

    def by_state(self, *states: ProposalState) -> list[ActionProposal]:
        return [p for p in self.proposals.values() if p.state in states]


def _parse(rec: dict[str, Any]) -> JournalRecord | None:
    """Only the Executor's own kinds change its state (other kinds are not its business)."""
    cls = _BY_KIND.get(str(rec.get("kind", "")))
    return cls.from_record(rec) if cls is not None else None


ExecState._HANDLERS.update(
    {
        ProposalRecord: ExecState._on_proposal,
        DecisionRecord: ExecState._on_decision,
        Refusal: ExecState._on_refusal,
        ApprovalEscalated: ExecState._on_approval_escalated,
        PlanRecord: ExecState._on_plan,
        OrderSent: ExecState._on_order,
        OrderCancel: ExecState._on_order_cancel,
        OrderReport: ExecState.order_report,
        MarginCallRecord: ExecState._on_margin_call,
        TradingState: ExecState._on_trading_state,
        ProposalClosed: ExecState._on_proposal_closed,
    }
)


def _stage(data: dict[str, Any]) -> Stage:
    """A stage as journaled (JSON turned its roles tuple into a list)."""
    return Stage(
        data["name"], tuple(data.get("roles", ())), int(data.get("approvers", 1)),
        float(data.get("time_limit_s", 0.0)),
    )  # fmt: skip
