"""The machine's clock: verification, approval time limits, figures, the emergency policy.

A Tick runs one short round (verification, open orders, replacements); the slower duties (time
limits and pruning every second, journaled figures of accounts with open proposals every
`mark_interval_s`, the emergency policy on those figures) run on their own intervals within it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from rules.actions import moot_reason, target_met
from rules.approval import EMERGENCY_USER, expired, overdue
from rules.execution.closing import close, mark_record, record, why_not
from rules.execution.decisions import on_proposals
from rules.execution.messages import (
    Effect,
    Journal,
    Notify,
    PlanApproved,
    ProposalsSubmitted,
    Reply,
    SendOrders,
)
from rules.execution.orders import on_plan
from rules.journal_records import ApprovalEscalated, DecisionRecord
from rules.model import ActionProposal, Alert, ProposalState, stable_id

if TYPE_CHECKING:
    from rules.execution.machine import ExecutionMachine

MARK_BATCH = 2000  # accounts marked per round at most
OPEN = (ProposalState.PENDING, ProposalState.APPROVED, ProposalState.EXECUTING)


def verify_due(m: ExecutionMachine, now: float) -> dict[str, float]:
    """Proposals whose outcome is checked this round -> their deadline (margin calls: once a
    second until their deadline, the rest every round)."""
    return {
        pid: dl
        for pid, dl in m.verifying.items()
        if m.state.proposals[pid].kind != "margin_call"
        or now - m.last_check.get(pid, 0.0) >= 1.0
        or now >= dl
    }


def mark_accounts(m: ExecutionMachine) -> dict[str, str]:
    """Accounts with open proposals, least recently marked first -> one of their proposals."""
    open_: dict[str, str] = {}
    for p in m.state.by_state(*OPEN):
        open_.setdefault(p.account_id, p.proposal_id)
    accounts = sorted(open_, key=lambda a: m.last_mark.get(a, 0.0))[:MARK_BATCH]
    return {a: open_[a] for a in accounts}


def verify_round(m: ExecutionMachine, views: dict[str, Any], now: float) -> list[Effect]:
    due = verify_due(m, now)
    effects: list[Effect] = []
    for pid, deadline in due.items():
        p = m.state.proposals[pid]
        view = views.get(p.account_id)
        skipped = len(m.state.plans.get(pid, {}).get("skipped", ()))
        if p.kind == "freeze":
            met = pid in m.state.state_acked
            last = m.last_check.setdefault(pid, now)
            if not met and now - last >= 1.0:
                # the confirmation may have been lost on PUB/SUB: the command is idempotent
                m.last_check[pid] = now
                effects.append(SendOrders(({"type": "trading_state", "account_id": p.account_id,
                                            "state": "REDUCING"},)))  # fmt: skip
        else:
            met = target_met(
                p.kind, p.target_risk_degree, view or {}, skipped, m.settings.target_tolerance
            )
        if p.kind == "margin_call":
            m.last_check[pid] = now
        if met and p.kind in ("reduce", "liquidate") and not _filled(m, pid):
            # met, but not by this action: no order of it filled (the market moved, or the
            # account was topped up) — the truth is "moot", not "done"
            why = moot_reason(p.kind, p.target_risk_degree, view or {}, m.settings.target_tolerance)
            effects += close(m, pid, ProposalState.MOOT, why + "; no order filled", now, view)
        elif met:
            effects += close(m, pid, ProposalState.DONE, "", now, view)
        elif now >= deadline:
            effects += close(m, pid, ProposalState.FAILED, why_not(m, p, view), now, view)
    return effects


def _filled(m: ExecutionMachine, pid: str) -> float:
    return sum(m.state.orders[r]["filled"] for r in m.state.orders_of.get(pid, ()))


def approval_round(m: ExecutionMachine, now: float) -> list[Effect]:
    """Pending proposals past their time: expired ones closed, overdue stages escalated."""
    escalate: dict[tuple[str, int], list[str]] = {}
    expire: list[str] = []
    for p in m.state.by_state(ProposalState.PENDING):
        st = m.state.approval[p.proposal_id]
        if expired(m.policy, st, now):
            expire.append(p.proposal_id)
        elif overdue(st, now) is not None:
            gid = m.state.group_of.get(p.proposal_id, "")
            escalate.setdefault((gid, st.stage), []).append(p.proposal_id)
    effects: list[Effect] = []
    for pid in expire:
        why = f"EXPIRED: no decision within {m.policy.expire_after_s:.0f} s"
        effects += close(m, pid, ProposalState.REJECTED, why, now, decided_by="system")
    if escalate:
        effects += _escalate(m, escalate, now)
    return effects


def _escalate(
    m: ExecutionMachine, groups: dict[tuple[str, int], list[str]], now: float
) -> list[Effect]:
    """One page per (group, stage) through the notifier, not one per proposal."""
    records, alerts = [], []
    for (gid, stage_index), pids in groups.items():
        st = m.state.approval[pids[0]]
        stage = st.stages[stage_index]
        waited = now - st.stage_started_ts
        first = m.state.proposals[pids[0]]
        key = first.account_id if len(pids) == 1 else gid
        records.append(
            record(ApprovalEscalated, key, gid, now, proposal_ids=pids, stage_index=stage_index,
                   stage_name=stage.name, roles=list(stage.roles), waited_s=waited)
        )  # fmt: skip
        alerts.append(
            Alert(
                alert_id=stable_id("approval.timeout", gid, stage_index, *sorted(pids)[:1]),
                rule_id="approval.timeout",
                key=key,
                severity="critical",
                title=(
                    f"审批超时 approval overdue: {len(pids)} {first.kind} proposal(s) wait at "
                    f"'{stage.name}' ({', '.join(stage.roles)}) for {waited:.0f} s"
                ),
                value=waited,
                threshold=stage.time_limit_s,
                created_ts=now,
                ingress_ts=min(m.state.proposals[p].created_ts for p in pids),
                dimension="approval",
                attributes={"group_id": gid, "proposal_ids": pids[:50], "stage": stage.name},
            )
        )
    for r in records:
        m.state.apply(r)
    m.counts["escalations"] += len(alerts)
    return [Journal(tuple(records), durable=True), Notify(tuple(alerts))]


def mark_round(m: ExecutionMachine, views: dict[str, Any], now: float) -> list[Effect]:
    """Journal the figures of accounts with open proposals; feed the emergency watch."""
    open_ = mark_accounts(m)
    marked = {a: v for a, v in views.items() if a in open_}
    effects: list[Effect] = [
        Journal(tuple(mark_record(m, open_[a], v, "watch", now) for a, v in marked.items()))
    ]
    if m.policy.emergency.enabled:
        due = [a for a, v in marked.items() if m.emergency.observe(a, v["risk_degree"], now)]
        if due:
            effects += _emergency(m, due, views, now)
    return effects


def _emergency(
    m: ExecutionMachine, accounts: list[str], views: dict[str, Any], now: float
) -> list[Effect]:
    """Act without approval: the policy is the decider, journaled as such, and every pending
    proposal of the account is closed as superseded."""
    em = m.policy.emergency
    proposals = []
    for a in accounts:
        pid = stable_id("proposal", "emergency", a, now)
        proposals.append(
            ActionProposal(pid, "", a, em.kind, 0.8, now, reason=(
                f"EMERGENCY_POLICY: risk degree {views[a]['risk_degree']:.2%} above "
                f"{em.risk_degree_above:.0%} for {em.for_s:.0f} s"))
        )  # fmt: skip
    effects = on_proposals(m, ProposalsSubmitted(tuple(proposals), EMERGENCY_USER, views), now)
    records = []
    for p in proposals:
        records.append(
            record(DecisionRecord, p.account_id, p.proposal_id, now, decision="approve",
                   user=EMERGENCY_USER, via="emergency", request_id=uuid.uuid5(
                       uuid.NAMESPACE_OID, p.proposal_id).hex,
                   reason=p.reason, signed=False, stage_index=0, stage_name="emergency",
                   stage_after=len(m.state.approval[p.proposal_id].stages),
                   status_after="approved", complete=True,
                   auth={"signer": "emergency", "policy": "approval.emergency"})
        )  # fmt: skip
    mine = {p.proposal_id for p in proposals}
    superseded = [
        q.proposal_id
        for q in m.state.by_state(ProposalState.PENDING)
        if q.account_id in accounts and q.proposal_id not in mine
    ]
    for r in records:
        m.state.apply(r)
    m.counts["emergencies"] += len(proposals)
    effects.append(Journal(tuple(records), durable=True))
    for pid in superseded:
        effects += close(
            m,
            pid,
            ProposalState.REJECTED,
            "SUPERSEDED_BY_EMERGENCY",
            now,
            decided_by=EMERGENCY_USER,
        )
    planned = on_plan(m, PlanApproved(tuple(p.proposal_id for p in proposals), views), now)
    return [e for e in effects + planned if not isinstance(e, Reply)]
