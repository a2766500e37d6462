"""Proposals in, decisions by authenticated people: the approval half of the machine.

A proposal is journaled (durably) with its preview plan, approval stages and batch group before
anything acts on it. A decision request is checked as a whole first (known user, signature, age,
replay: rules.approval.check_request), then each proposal against its approval state
(rules.approval.decide); every refusal carries its upper-case reason code. Decisions and
refusals are journaled durably before a completed approval asks for its plan (`PlanDue`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rules.actions import ACTION_KINDS, plan_action
from rules.approval import ApprovalState, check_request, decide
from rules.execution.closing import close, mark_record, record
from rules.execution.messages import (
    Decided,
    Decision,
    Effect,
    Journal,
    ManualProposal,
    PlanDue,
    ProposalsSubmitted,
    Reply,
)
from rules.journal_records import DecisionRecord, ProposalRecord, Refusal
from rules.model import ActionProposal, ProposalState, stable_id

if TYPE_CHECKING:
    from rules.execution.machine import ExecutionMachine


def on_proposals(m: ExecutionMachine, msg: ProposalsSubmitted, now: float) -> list[Effect]:
    st, s = m.state, m.settings
    fresh = [p for p in msg.proposals if p.proposal_id not in st.proposals]
    m.counts["duplicate_proposals"] += len(msg.proposals) - len(fresh)
    records: list[dict[str, Any]] = []
    unknown = [p for p in fresh if msg.views.get(p.account_id) is None]
    for p in unknown:  # a missing view = an account the books do not know: never a proposal
        why = f"UNKNOWN_ACCOUNT: no account {p.account_id!r} in the books"
        rec = record(Refusal, p.account_id, p.proposal_id, now, user=msg.proposer,
                     decision="propose", via="propose", code="UNKNOWN_ACCOUNT", reason=why)  # fmt: skip
        st.apply(rec)
        records.append(rec)
    m.counts["refused"] += len(unknown)
    fresh = [p for p in fresh if msg.views.get(p.account_id) is not None]
    for p in fresh:
        view = msg.views.get(p.account_id)
        preview = (
            plan_action(view, p.kind, p.target_risk_degree, s.margin_call_deadline_s)
            if view
            else None
        )
        size = preview.notional if preview else 0.0
        approval = ApprovalState.new(
            m.policy, p.proposal_id, p.kind, size, msg.proposer, p.created_ts
        )
        gid = st.group_for(p.kind, p.target_risk_degree, p.created_ts, s.group_gap_s, p.proposal_id)
        fields = {k: v for k, v in p.to_record().items() if k != "kind"}
        rec = record(
            ProposalRecord, p.account_id, p.proposal_id, now, **fields,
            proposal_kind=p.kind, proposed_by=msg.proposer, group_id=gid, size=size,
            stages=[asdict(x) for x in approval.stages],
            policy="open" if m.policy.open else "roster",
            preview={
                "legs": len(preview.legs),
                "notional": preview.notional,
                "explanation": preview.explanation,
                "skipped": preview.skipped,
                "projected_risk_degree": preview.projected_risk_degree,
            }
            if preview
            else {"explanation": "NO_VIEW: the account was not found on its shard"},
        )  # fmt: skip
        st.apply(rec)  # groups must see each other within one batch
        records.append(rec)
        if view:
            records.append(mark_record(m, p.proposal_id, view, "proposal", now))
    m.counts["proposals"] += len(fresh)
    reply: dict[str, Any] = {"accepted": len(fresh)}
    if unknown:
        reply["refused"] = {p.proposal_id: "UNKNOWN_ACCOUNT" for p in unknown}
    return [Journal(tuple(records), durable=True), Reply(reply)]


def on_manual(m: ExecutionMachine, msg: ManualProposal, now: float) -> list[Effect]:
    """A proposal by hand, refused (journaled, with its code) unless its user is in the roster,
    its kind is an action and its account is one the book knows (a missing view = unknown)."""
    code, why = "", ""
    if m.policy.user(msg.user) is None:
        code, why = "UNKNOWN_USER", f"{msg.user!r} is not in the roster"
    elif msg.kind not in ACTION_KINDS:
        code, why = "UNKNOWN_ACTION", f"{msg.kind!r} is not one of {', '.join(ACTION_KINDS)}"
    elif msg.views.get(msg.account_id) is None:
        code, why = "UNKNOWN_ACCOUNT", f"no account {msg.account_id!r} in the books"
    elif not 0.0 < msg.target < 10.0:
        code, why = "BAD_TARGET", f"target risk degree {msg.target!r} is not a ratio above 0"
    if code:
        rec = record(
            Refusal, msg.account_id, "", now, user=msg.user, decision="propose", via="propose",
            code=code, reason=f"{code}: {why}",
        )  # fmt: skip
        m.state.apply(rec)
        m.counts["refused"] += 1
        return [Journal((rec,), durable=True), Reply({"refused": rec["reason"], "code": code})]
    pid = stable_id("proposal", "manual", msg.account_id, msg.kind, msg.user, now)
    p = ActionProposal(
        pid, "", msg.account_id, msg.kind, msg.target, now, reason=msg.reason or "by hand"
    )
    effects = on_proposals(m, ProposalsSubmitted((p,), msg.user, msg.views), now)
    reply = {"proposal_id": pid, "state": "pending", "proposed_by": msg.user}
    return [e for e in effects if not isinstance(e, Reply)] + [Reply(reply)]


def resolve(m: ExecutionMachine, ids: tuple[str, ...] | list[str], group: str):
    """Full ids, unique prefixes, or every pending proposal of a batch group -> (ids, unknown)."""
    st = m.state
    pids: list[str] = []
    unknown: list[str] = []
    for ident in ids:
        if ident in st.proposals:
            pids.append(ident)
            continue
        matches = [pid for pid in st.proposals if pid.startswith(ident)]
        (pids.append(matches[0]) if len(matches) == 1 and ident else unknown.append(ident))
    if group:
        members = st.groups.get(group, [])
        if not members:
            unknown.append(group)
        pids += [
            pid
            for pid in members
            if st.proposals[pid].state is ProposalState.PENDING and pid not in pids
        ]
    return list(dict.fromkeys(pids)), unknown


def on_decision(m: ExecutionMachine, msg: Decision, now: float) -> list[Effect]:
    """One decision request; every refusal is journaled with its reason code."""
    st = m.state
    fields = {
        "action": msg.action, "user": msg.user, "ids": list(msg.ids), "group": msg.group,
        "reason": msg.reason, "ts": msg.ts, "request_id": msg.request_id,
    }  # fmt: skip
    pids, unknown = resolve(m, msg.ids, msg.group)
    code, detail = check_request(
        m.policy, msg.user, msg.secret, msg.signature, fields, now, st.requests,
        console_key=msg.console_key, session=msg.session,
    )  # fmt: skip
    if not code and msg.via == "http" and not msg.signature:
        code, detail = "UNSIGNED_REQUEST", "decisions over HTTP must be signed"
    base = {"user": msg.user, "via": msg.via, "request_id": msg.request_id, "decision": msg.action}
    records: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    if code:
        for pid in pids or [""]:
            key = st.proposals[pid].account_id if pid else ""
            records.append(
                record(Refusal, key, pid, now, **base, code=code, reason=f"{code}: {detail}")
            )
            results.append({"proposal_id": pid, "refused": f"{code}: {detail}"})
        _apply_all(m, records)
        m.counts["refused"] += len(records)
        reply = {"request_id": msg.request_id, "refused": code, "results": results}
        return [Journal(tuple(records), durable=True), Reply(reply)]
    for ident in unknown:
        records.append(
            record(Refusal, "", ident, now, **base, code="UNKNOWN_PROPOSAL",
                   reason=f"UNKNOWN_PROPOSAL: no unique proposal {ident!r}")
        )  # fmt: skip
        results.append({"proposal_id": ident, "refused": f"UNKNOWN_PROPOSAL: {ident!r}"})
    complete: list[tuple[str, str]] = []
    auth = {
        "signer": ("console" if msg.session else "person") if msg.signature else "demo",
        "signature": msg.signature, "session": msg.session, "ids": list(msg.ids),
        "group": msg.group, "ts": msg.ts,
    }  # fmt: skip
    for pid in pids:
        p, approval = st.proposals[pid], st.approval[pid]
        out = decide(m.policy, approval, msg.user, msg.action, now)
        if out.refused:
            reason = f"{out.refused}: {out.detail}"
            records.append(
                record(Refusal, p.account_id, pid, now, **base, code=out.refused, reason=reason)
            )
            results.append({"proposal_id": pid, "state": p.state.value, "refused": reason})
            continue
        records.append(
            record(
                DecisionRecord, p.account_id, pid, now, **base, reason=msg.reason,
                signed=bool(msg.signature), stage_index=approval.stage,
                stage_name=out.stage_name, stage_after=out.state.stage,
                status_after=out.state.status, complete=out.complete,
                group_id=st.group_of.get(pid, ""), auth=auth,
            )
        )  # fmt: skip
        results.append(
            {"proposal_id": pid, "state": out.state.status, "stage": out.state.describe()}
        )
        if out.complete:
            complete.append((pid, out.state.status))
    _apply_all(m, records)
    m.counts["refused"] += sum(1 for r in records if r["kind"] == Refusal.KIND)
    m.counts["decisions"] += sum(1 for r in records if r["kind"] == DecisionRecord.KIND)
    effects: list[Effect] = [Journal(tuple(records), durable=True)]
    effects += [Decided(pid, max(0.0, now - st.proposals[pid].created_ts)) for pid, _ in complete]
    for pid, status in complete:
        if status == "rejected":
            why = f"REJECTED by {msg.user}: {msg.reason}"
            effects += close(m, pid, ProposalState.REJECTED, why, now)
    approved = tuple(pid for pid, status in complete if status == "approved")
    if approved:
        effects.append(PlanDue(approved, tuple(st.proposals[p].account_id for p in approved)))
    effects.append(Reply({"request_id": msg.request_id, "results": results}))
    return effects


def _apply_all(m: ExecutionMachine, records: list[dict[str, Any]]) -> None:
    for r in records:
        m.state.apply(r)
