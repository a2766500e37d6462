"""The Executor as a pure state machine: `ExecutionMachine.apply(input, now) -> [effects]`.

Ray Serve's controller keeps its state in managers that one control loop updates; here the one
manager is this machine and the Executor actor is its shell: it receives a message, fetches the
account figures the input needs, calls `apply`, journals the effects (durable ones before it
acts: the outbox), then performs them. No Ray, no sockets, no clock: `now` is passed.

Durable state is `ExecState`, changed only by journal records through its `apply`, so a restart
is `apply(Replay(records))` — the same path as live. The rest is the clock's bookkeeping
(verification deadlines, orders to re-price, when an account was last marked, the emergency
watch), rebuilt on a restart from the durable state (`_resume`).
"""

from __future__ import annotations

import collections
from typing import Any

from rules.approval import ApprovalPolicy, EmergencyWatch
from rules.execution import decisions, orders, watch
from rules.execution.messages import (
    Decision,
    Effect,
    ExecutionSettings,
    Input,
    ManualProposal,
    OrderReports,
    OrdersSent,
    PlanApproved,
    PlanDue,
    ProposalsSubmitted,
    Replay,
    Tick,
)
from rules.execution.outcomes import closed_loop_rate, event_outcome, proposal_outcome
from rules.execution.state import CLOSED, ExecState
from rules.model import ActionProposal, ProposalState

__all__ = ["ExecutionMachine"]


class ExecutionMachine:
    def __init__(self, policy: ApprovalPolicy, settings: ExecutionSettings) -> None:
        self.policy = policy
        self.settings = settings
        self.state = ExecState()
        self.counts: collections.Counter = collections.Counter()
        self.emergency = EmergencyWatch(policy.emergency)
        self.verifying: dict[str, float] = {}  # proposal -> verification deadline
        self.reprice: set[str] = set()  # cancelled for re-pricing, replacement not sent yet
        self.last_mark: dict[str, float] = {}  # account -> when its figures were journaled
        self.last_check: dict[str, float] = {}  # margin call / freeze -> last check or resend
        self.unsent: set[str] = set()  # orders journaled, not yet sent by the shell
        self.next_slow = 0.0
        self.next_mark = 0.0

    # ---- the one entry point -------------------------------------------------------------------

    def apply(self, msg: Input, now: float) -> list[Effect]:
        if isinstance(msg, ProposalsSubmitted):
            return decisions.on_proposals(self, msg, now)
        if isinstance(msg, ManualProposal):
            return decisions.on_manual(self, msg, now)
        if isinstance(msg, Decision):
            return decisions.on_decision(self, msg, now)
        if isinstance(msg, PlanApproved):
            return orders.on_plan(self, msg, now)
        if isinstance(msg, OrderReports):
            return orders.on_reports(self, msg, now)
        if isinstance(msg, OrdersSent):
            self.unsent.difference_update(msg.order_refs)
            return []
        if isinstance(msg, Tick):
            return self._tick(msg, now)
        if isinstance(msg, Replay):
            return self._replay(msg, now)
        raise TypeError(f"ExecutionMachine.apply: no input of type {type(msg).__name__}")

    def tick_accounts(self, now: float) -> list[str]:
        """The accounts whose views the next Tick needs (one fetch per shard, all at once)."""
        st = self.state
        wanted = [st.proposals[pid].account_id for pid in watch.verify_due(self, now)]
        wanted += [st.orders[r]["account_id"] for r in self.reprice if r in st.orders]
        if now >= self.next_mark:
            wanted += list(watch.mark_accounts(self))
        return list(dict.fromkeys(wanted))

    def new_accounts(self, proposals: list[ActionProposal]) -> list[str]:
        """The accounts of the proposals not seen before (whose views ProposalsSubmitted needs)."""
        return [p.account_id for p in proposals if p.proposal_id not in self.state.proposals]

    def _tick(self, msg: Tick, now: float) -> list[Effect]:
        views = dict(msg.views)
        effects = watch.verify_round(self, views, now)
        effects += orders.orders_round(self, now)
        if self.reprice:
            effects += orders.replacements(self, views, now)
        if now >= self.next_slow:
            self.next_slow = now + 1.0
            effects += watch.approval_round(self, now)
            self.counts["pruned"] += self.state.prune(now - self.settings.resume_window_s)
        if now >= self.next_mark:
            self.next_mark = now + self.settings.mark_interval_s
            effects += watch.mark_round(self, views, now)
        return effects

    # ---- restart -------------------------------------------------------------------------------

    def _replay(self, msg: Replay, now: float) -> list[Effect]:
        """The journal through the same `ExecState.apply`, then carry on: open orders are asked
        about at once, approved plans carried out, finished ones verified. Never an order."""
        for rec in msg.records:
            self.state.apply(rec)
        self.counts["rebuilt_records"] += len(msg.records)
        st = self.state
        approved = []
        for p in st.by_state(ProposalState.APPROVED, ProposalState.EXECUTING):
            if p.proposal_id not in st.plans:
                approved.append(p.proposal_id)
            elif st.orders_done(p.proposal_id):
                self.verifying[p.proposal_id] = now + self.settings.verify_timeout_s
        for o in st.orders.values():
            o["report_ts"] = 0.0  # ask at once
            if o["status"] == "cancelled" and o.get("cancel_reason") == "REPRICE":
                self.reprice.add(o["order_ref"])
        self.counts["resumed_orders"] = sum(
            1 for o in st.orders.values() if o["status"] != "filled"
        )
        if not approved:
            return []
        return [PlanDue(tuple(approved), tuple(st.proposals[p].account_id for p in approved))]

    # ---- reads ---------------------------------------------------------------------------------

    def pending_records(self) -> list[dict[str, Any]]:
        """Pending proposals with their batch group, approval stage, size and preview plan."""
        st = self.state
        out = []
        for p in st.by_state(ProposalState.PENDING):
            rec = p.to_record()
            approval = st.approval[p.proposal_id]
            rec.update(
                group_id=st.group_of.get(p.proposal_id, ""),
                stage=approval.describe(),
                size=approval.size,
                proposed_by=st.proposer.get(p.proposal_id, ""),
                preview=st.preview.get(p.proposal_id, {}),
            )
            out.append(rec)
        return out

    def group_records(self) -> list[dict[str, Any]]:
        out = []
        for gid, pids in self.state.groups.items():
            states = collections.Counter(self.state.proposals[p].state.value for p in pids)
            first = self.state.proposals[pids[0]]
            out.append(
                {"group_id": gid, "kind": first.kind, "proposals": len(pids),
                 "states": dict(states), "first_ts": first.created_ts}
            )  # fmt: skip
        return out

    def proposal_record(self, ident: str) -> dict[str, Any]:
        pids, _ = decisions.resolve(self, [ident], "")
        if len(pids) != 1:
            raise KeyError(f"no unique proposal {ident!r}")
        pid, st = pids[0], self.state
        return {
            **st.proposals[pid].to_record(),
            "group_id": st.group_of.get(pid, ""),
            "approval": st.approval[pid].describe(),
            "plan": st.plans.get(pid),
            "orders": [dict(st.orders[r]) for r in st.orders_of.get(pid, ())],
            "closed": st.closed.get(pid),
        }

    def pending_ids(self) -> list[str]:
        return [p.proposal_id for p in self.state.by_state(ProposalState.PENDING)]

    def event_outcomes(self) -> collections.Counter:
        """Outcomes of the events this Executor holds (an alert's proposals together, a proposal
        made by hand alone), as the KPI report counts them (rules.execution.outcomes)."""
        st = self.state
        by_event: dict[str, list[str]] = collections.defaultdict(list)
        for pid, p in st.proposals.items():
            out = "open"
            if p.state in CLOSED:
                out = proposal_outcome(p.state.value, st.closed.get(pid, {}).get("reason", ""))
            by_event[p.alert_id or pid].append(out)
        return collections.Counter(event_outcome(outs) for outs in by_event.values())

    def closed_loop_rate(self) -> float | None:
        """闭环处置率 live: executed-and-verified events over those that needed action (moot ones
        left out, open ones counting against it until they close); None while none needed any."""
        return closed_loop_rate(self.event_outcomes().elements())

    def stats(self) -> dict[str, Any]:
        states = collections.Counter(p.state.value for p in self.state.proposals.values())
        open_orders = sum(
            1
            for o in self.state.orders.values()
            if o["status"] not in ("filled", "cancelled", "rejected")
        )
        return {
            **dict(self.counts),
            "states": dict(states),
            "open_orders": open_orders,
            "verifying": len(self.verifying),
            "event_outcomes": dict(self.event_outcomes()),
            "closed_loop_rate": self.closed_loop_rate(),
        }
