"""The execution machine's approval half without Ray: every refusal code it journals, four-eyes,
multi-stage approval, batch groups, rejection, expiry and escalation."""

from __future__ import annotations

import pytest

from rules.approval import sign_request
from rules.execution.messages import ManualProposal, ProposalsSubmitted
from rules.model import ActionProposal
from tests.rules.execution_world import World, view

ROSTER = {
    "users": [
        {"name": "zhang", "roles": ["risk_desk"]},
        {"name": "wang", "roles": ["risk_desk"], "secret_env": "WANG_SECRET_UNSET"},
        {"name": "li", "roles": ["business_head"]},
        {"name": "chen", "roles": ["executive", "risk_desk"]},
    ],
    "policies": [
        {"kind": "reduce", "stages": [{"name": "desk", "roles": ["risk_desk"], "time_limit_s": 60}]},
        {"kind": "liquidate", "stages": [
            {"name": "desk", "roles": ["risk_desk"]},
            {"name": "business", "roles": ["business_head", "executive"]},
        ]},
    ],
    "expire_after_s": 3600,
}  # fmt: skip


def _world(policy=ROSTER) -> World:
    w = World(policy)
    w.views["A1"] = view("A1", 20, 60_000)  # 100 % risk degree
    w.views["A2"] = view("A2", 20, 60_000)
    return w


def _propose(w: World, account="A1", kind="reduce", target=0.8, pid=None, ts=None) -> str:
    pid = pid or f"P-{account}-{kind}"
    p = ActionProposal(pid, "alert-1", account, kind, target, w.now if ts is None else ts)
    w.run(ProposalsSubmitted((p,), "system", {account: w.views[account]}))
    return pid


def _codes(w: World) -> list[str]:
    return [r["code"] for r in w.kinds("refusal")]


def test_proposal_is_journaled_durably_with_preview_stages_and_figures():
    w = _world()
    pid = _propose(w)
    [rec] = w.kinds("proposal")
    assert rec["ref"] == pid and rec["proposal_kind"] == "reduce" and rec["policy"] == "roster"
    assert rec["preview"]["legs"] == 1 and rec["stages"][0]["name"] == "desk"
    assert [m["phase"] for m in w.kinds("account_mark")] == ["proposal"]
    # the same proposal again is counted, not journaled twice
    _propose(w)
    assert len(w.kinds("proposal")) == 1 and w.machine.counts["duplicate_proposals"] == 1


def test_a_proposal_without_a_view_is_refused_as_an_unknown_account():
    # issue 19: a missing view means an account the books do not know — refused, journaled
    # with its code, never a proposal someone could approve (was: accepted with a NO_VIEW note)
    w = _world()
    p = ActionProposal("P9", "", "NOPE", "reduce", 0.8, w.now)
    reply = w.run(ProposalsSubmitted((p,), "system", {}))
    assert reply == {"accepted": 0, "refused": {"P9": "UNKNOWN_ACCOUNT"}}
    assert w.kinds("proposal") == [] and w.kinds("refusal")[0]["code"] == "UNKNOWN_ACCOUNT"


@pytest.mark.parametrize(
    ("user", "code"),
    [("nobody", "UNKNOWN_USER"), ("li", "WRONG_ROLE")],
)
def test_refused_deciders(user, code):
    w = _world()
    pid = _propose(w)
    out = w.decide("approve", [pid], user)
    assert _codes(w) == [code]
    assert out["results"][0]["refused"].startswith(code)
    assert w.machine.state.proposals[pid].state.value == "pending"
    assert w.orders() == []


def test_four_eyes_own_proposal_and_same_approver():
    w = _world()
    out = w.run(ManualProposal("A1", "liquidate", "zhang", 0.5, "by hand", w.views))
    pid = out["proposal_id"]
    w.decide("approve", [pid], "zhang")
    assert _codes(w) == ["OWN_PROPOSAL"]
    w.decide("approve", [pid], "chen")  # desk stage done, business next
    assert w.machine.state.approval[pid].stage == 1
    w.decide("approve", [pid], "chen")  # chen may sign the business stage, but not twice
    assert _codes(w)[-1] == "SAME_APPROVER"
    w.decide("approve", [pid], "li")
    assert w.machine.state.proposals[pid].state.value == "executing"
    assert len(w.orders()) == 1
    w.decide("approve", [pid], "zhang")
    assert _codes(w)[-1] == "NOT_PENDING"


def test_manual_proposal_by_an_unknown_user_is_refused():
    w = _world()
    out = w.run(ManualProposal("A1", "reduce", "ghost", 0.8, "", w.views))
    assert out["refused"].startswith("UNKNOWN_USER") and _codes(w) == ["UNKNOWN_USER"]
    assert not w.machine.state.proposals


def test_request_checks_replay_stale_unsigned_bad_signature_malformed_unknown():
    w = _world()
    pid = _propose(w)
    w.decide("approve", [pid], "chen", request_id="same")
    w.decide("approve", [pid], "chen", request_id="same")
    assert _codes(w) == ["REPLAYED_REQUEST"]
    w2 = _world()
    pid = _propose(w2)
    w2.decide("approve", [pid], "zhang", ts=w2.now - 10_000)
    w2.decide("approve", [pid], "wang", unsigned=True)  # every person signs (issue 13)
    w2.decide("approve", [pid], "zhang", via="http", unsigned=True)  # HTTP too
    w2.decide("approve", [pid], "wang", signature="00" * 32, secret="s3cret")
    w2.decide("approve", [pid], "zhang", request_id="")
    w2.decide("approve", ["no-such-id"], "zhang")
    assert _codes(w2) == [
        "STALE_REQUEST", "UNSIGNED_REQUEST", "UNSIGNED_REQUEST", "BAD_SIGNATURE", "MALFORMED",
        "UNKNOWN_PROPOSAL",
    ]  # fmt: skip
    assert w2.machine.state.proposals[pid].state.value == "pending"


def test_a_good_signature_is_accepted():
    w = _world()
    pid = _propose(w)
    fields = {"action": "approve", "user": "wang", "ids": [pid], "group": "", "reason": "",
              "ts": w.now, "request_id": "signed-1"}  # fmt: skip
    sig = sign_request("s3cret", **fields)
    w.decide("approve", [pid], "wang", request_id="signed-1", signature=sig, secret="s3cret")
    assert not _codes(w) and w.kinds("decision")[0]["signed"] is True
    auth = w.kinds("decision")[0]["auth"]  # what `audit verify` recomputes the signature from
    assert auth == {"signer": "person", "signature": sig, "session": "", "ids": [pid],
                    "group": "", "ts": w.now}  # fmt: skip
    assert w.machine.state.proposals[pid].state.value == "executing"


def test_batch_group_decided_in_one_step_and_prefixes_resolve():
    w = _world()
    a = _propose(w, "A1", pid="PA-0001")
    b = _propose(w, "A2", pid="PB-0002", ts=w.now + 1)
    gid = w.machine.state.group_of[a]
    assert w.machine.state.group_of[b] == gid
    out = w.decide("approve", [], "zhang", group=gid)
    assert {r["proposal_id"] for r in out["results"]} == {a, b}
    assert {r["orders"] for r in out["planned"].values()} == {1}
    w2 = _world()
    pid = _propose(w2, pid="PREFIX-123")
    out = w2.decide("reject", ["PREFIX"], "zhang", reason="not now")
    [closed] = w2.kinds("proposal_closed")
    assert closed["state"] == "rejected" and closed["reason"] == "REJECTED by zhang: not now"
    assert w2.machine.state.proposals[pid].state.value == "rejected" and not w2.orders()


def test_time_limit_escalates_once_per_group_and_stage_then_expires():
    w = _world()
    _propose(w, "A1")
    _propose(w, "A2", pid="P-A2", ts=w.now)
    w.tick(w.now + 61)
    [esc] = w.kinds("approval_escalated")
    assert sorted(esc["proposal_ids"]) == ["P-A1-reduce", "P-A2"] and esc["stage_name"] == "desk"
    assert len(w.notified) == 1 and w.notified[0].rule_id == "approval.timeout"
    w.tick(w.now + 63)
    assert len(w.kinds("approval_escalated")) == 1  # once per stage
    w.tick(w.now + 3601)
    reasons = {r["ref"]: r["reason"] for r in w.kinds("proposal_closed")}
    assert all(r.startswith("EXPIRED") for r in reasons.values()) and len(reasons) == 2


def test_emergency_policy_acts_without_a_person_and_supersedes():
    policy = {"emergency": {"enabled": True, "risk_degree_above": 0.9, "for_s": 1.0}}
    w = _world(policy)
    waiting = _propose(w)
    w.tick(w.now)
    w.tick(w.now + 6)  # above the line for longer than for_s, at the next mark
    [decision] = w.kinds("decision")
    assert decision["user"] == "EMERGENCY_POLICY" and decision["via"] == "emergency"
    closed = {r["ref"]: r for r in w.kinds("proposal_closed")}
    assert closed[waiting]["reason"] == "SUPERSEDED_BY_EMERGENCY"
    assert len(w.orders()) == 1 and w.orders()[0]["volume"] == 20  # liquidate all


def test_emergency_policy_is_off_by_default():
    w = _world()
    _propose(w)
    for k in range(20):
        w.tick(w.now + k)
    assert not w.kinds("decision") and not w.orders()


def test_a_decision_that_is_neither_approve_nor_reject_is_malformed():
    w = _world()
    pid = _propose(w)
    w.decide("maybe", [pid], "zhang")
    assert _codes(w) == ["MALFORMED"]
    assert w.machine.state.proposals[pid].state.value == "pending"
