"""The Executor's state, rebuilt from its own journal records.

Every change the Executor makes is a journal record first and a change of this state second,
through the same `apply`: so the live path and the restart path (read the records back, apply
them in order) cannot disagree. Nothing here talks to Ray or sockets.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, replace
from typing import Any

from rules.approval import Approval, ApprovalState, Stage
from rules.model import ActionProposal, ProposalState
from rules.orders import TERMINAL, advance

RESUME_KINDS = (
    "proposal",
    "decision",
    "refusal",
    "approval_escalated",
    "plan",
    "order",
    "order_cancel",
    "order_report",
    "margin_call",
    "trading_state",
    "proposal_closed",
)
CLOSED = (ProposalState.DONE, ProposalState.FAILED, ProposalState.REJECTED)


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

    # ---- apply ---------------------------------------------------------------------------------

    def apply(self, rec: dict[str, Any]) -> None:
        handler = getattr(self, f"_on_{rec['kind']}", None)
        if handler is not None:
            handler(rec)
            self.applied += 1

    def _on_proposal(self, rec: dict[str, Any]) -> None:
        pid = rec["ref"]
        if pid in self.proposals:
            return
        p = ActionProposal(
            proposal_id=pid,
            alert_id=rec.get("alert_id", ""),
            account_id=rec["account_id"],
            kind=rec["proposal_kind"],
            target_risk_degree=float(rec["target_risk_degree"]),
            created_ts=float(rec["created_ts"]),
            reason=rec.get("reason", ""),
        )
        self.proposals[pid] = p
        self.proposer[pid] = rec.get("proposed_by", "system")
        stages = tuple(_stage(s) for s in rec.get("stages", ()))
        self.approval[pid] = ApprovalState(
            pid, p.kind, float(rec.get("size", 0.0)), self.proposer[pid],
            stages or (Stage("risk desk"),), p.created_ts, stage_started_ts=p.created_ts,
        )  # fmt: skip
        gid = rec.get("group_id", "")
        self.group_of[pid] = gid
        self.groups[gid].append(pid)
        self.open_group[(p.kind, round(p.target_risk_degree, 6))] = (gid, p.created_ts)
        self.preview[pid] = rec.get("preview", {})

    def _on_decision(self, rec: dict[str, Any]) -> None:
        pid = rec["ref"]
        p, st = self.proposals.get(pid), self.approval.get(pid)
        if rec.get("request_id"):
            self.requests.add(rec["request_id"])
        if p is None or st is None:
            return
        approvals = st.approvals
        if rec["decision"] == "approve":
            approvals += (Approval(int(rec.get("stage_index", 0)), rec["user"], rec["ts"]),)
        after = replace(
            st,
            approvals=approvals,
            stage=int(rec.get("stage_after", st.stage)),
            status=rec.get("status_after", st.status),
            stage_started_ts=rec["ts"] if rec.get("stage_after", st.stage) != st.stage
            else st.stage_started_ts,
        )  # fmt: skip
        self.approval[pid] = after
        if after.status == "approved" and p.state is ProposalState.PENDING:
            p.state, p.decided_by, p.decided_ts = ProposalState.APPROVED, rec["user"], rec["ts"]
        elif after.status == "rejected" and p.state is ProposalState.PENDING:
            p.state, p.decided_by, p.decided_ts = ProposalState.REJECTED, rec["user"], rec["ts"]

    def _on_refusal(self, rec: dict[str, Any]) -> None:
        if rec.get("request_id"):
            self.requests.add(rec["request_id"])

    def _on_approval_escalated(self, rec: dict[str, Any]) -> None:
        for pid in rec.get("proposal_ids", ()):
            st = self.approval.get(pid)
            if st is not None and st.stage not in st.escalated:
                self.approval[pid] = replace(st, escalated=st.escalated + (st.stage,))

    def _on_plan(self, rec: dict[str, Any]) -> None:
        pid = rec["ref"]
        self.plans[pid] = rec
        p = self.proposals.get(pid)
        if p is not None and p.state is ProposalState.APPROVED:
            p.state = ProposalState.EXECUTING

    def _on_order(self, rec: dict[str, Any]) -> None:
        ref = rec["ref"]
        if ref in self.orders:
            return
        order = {k: v for k, v in rec.items() if k not in ("kind", "actor", "key", "ref", "seq")}
        order.update(status="submitted", filled=0.0, sent_ts=rec["ts"], report_ts=0.0)
        order.setdefault("order_ref", ref)
        self.orders[ref] = order
        self.orders_of[order["proposal_id"]].append(ref)

    def _on_order_cancel(self, rec: dict[str, Any]) -> None:
        order = self.orders.get(rec["ref"])
        if order is not None:
            order["cancel_reason"] = rec.get("reason", "")
            order["cancel_ts"] = rec["ts"]

    def _on_order_report(self, rec: dict[str, Any]) -> str:
        """Returns the follow-up the report asks for ("", "query", "resend")."""
        order = self.orders.get(rec["ref"])
        if order is None:
            return ""
        step = advance(order["status"], order["filled"], rec.get("status", ""), rec.get("filled"))
        order["report_ts"] = rec["ts"]
        if step.changed:
            order["status"], order["filled"] = step.status, step.filled
            if rec.get("price"):
                order["fill_price"] = rec["price"]
            if rec.get("reason"):
                order["reason_reported"] = rec["reason"]
        return step.follow_up

    def _on_margin_call(self, rec: dict[str, Any]) -> None:
        self.deadline[rec["ref"]] = float(rec["deadline_ts"])

    def _on_trading_state(self, rec: dict[str, Any]) -> None:
        if rec.get("acked"):
            self.state_acked.add(rec["ref"])

    def _on_proposal_closed(self, rec: dict[str, Any]) -> None:
        pid = rec["ref"]
        p = self.proposals.get(pid)
        self.closed[pid] = rec
        if p is not None:
            p.state = ProposalState(rec["state"])
            if rec.get("decided_by") and not p.decided_by:
                p.decided_by, p.decided_ts = rec["decided_by"], rec["ts"]

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


def _stage(data: dict[str, Any]) -> Stage:
    """A stage as journaled (JSON turned its roles tuple into a list)."""
    return Stage(
        data["name"], tuple(data.get("roles", ())), int(data.get("approvers", 1)),
        float(data.get("time_limit_s", 0.0)),
    )  # fmt: skip
