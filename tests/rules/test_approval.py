"""The approval policy as pure data: stages by kind and size, roles, four-eyes, time limits,
signed requests, the emergency watch."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rules.approval import (
    ApprovalPolicy,
    ApprovalState,
    EmergencyPolicy,
    EmergencyWatch,
    check_request,
    decide,
    expired,
    overdue,
    sign_console,
    sign_request,
)

POLICY = ApprovalPolicy.from_dict(
    {
        "users": [
            {"name": "zhang", "roles": ["risk_desk"]},
            {"name": "wang", "roles": ["risk_desk"], "secret_env": "WANG_SECRET"},
            {"name": "li", "roles": ["business_head"]},
            {"name": "chen", "roles": ["executive", "risk_desk"]},
        ],
        "policies": [
            {"kind": "reduce", "stages": [{"name": "desk", "roles": ["risk_desk"],
                                            "time_limit_s": 60}]},
            {"kind": "reduce", "min_size": 5e6,
             "stages": [{"name": "desk x2", "roles": ["risk_desk"], "approvers": 2}]},
            {"kind": "liquidate", "stages": [
                {"name": "desk", "roles": ["risk_desk"]},
                {"name": "business", "roles": ["business_head"], "time_limit_s": 120},
                {"name": "executive", "roles": ["executive"]},
            ]},
        ],
        "expire_after_s": 3600,
    }
)  # fmt: skip


def _state(kind="reduce", size=1e6, proposer="system", now=0.0) -> ApprovalState:
    return ApprovalState.new(POLICY, "P1", kind, size, proposer, now)


def test_stages_by_kind_and_size():
    assert [s.name for s in POLICY.stages_for("reduce", 1e6)] == ["desk"]
    assert [s.name for s in POLICY.stages_for("reduce", 6e6)] == ["desk x2"]
    assert [s.name for s in POLICY.stages_for("liquidate", 1)] == ["desk", "business", "executive"]
    assert [s.name for s in POLICY.stages_for("freeze", 1)] == ["risk desk"]  # default


def test_liquidate_goes_desk_business_executive():
    st = _state("liquidate")
    out = decide(POLICY, st, "zhang", "approve", 1)
    assert out.accepted and not out.complete and out.state.stage == 1
    assert decide(POLICY, out.state, "zhang", "approve", 2).refused == "WRONG_ROLE"
    out = decide(POLICY, out.state, "li", "approve", 3)
    assert out.state.describe() == "stage 3/3 executive: 0/1"
    out = decide(POLICY, out.state, "chen", "approve", 4)
    assert out.complete and out.state.status == "approved"
    assert decide(POLICY, out.state, "zhang", "approve", 5).refused == "NOT_PENDING"


@pytest.mark.parametrize(
    ("user", "proposer", "code"),
    [("nobody", "system", "UNKNOWN_USER"), ("li", "system", "WRONG_ROLE"),
     ("zhang", "zhang", "OWN_PROPOSAL")],
)  # fmt: skip
def test_refusals(user, proposer, code):
    assert decide(POLICY, _state(proposer=proposer), user, "approve", 1).refused == code


def test_two_distinct_approvers_for_a_large_reduce():
    out = decide(POLICY, _state(size=6e6), "zhang", "approve", 1)
    assert out.accepted and not out.complete
    assert decide(POLICY, out.state, "zhang", "approve", 2).refused == "SAME_APPROVER"
    assert decide(POLICY, out.state, "wang", "approve", 2).complete


def test_reject_stops_at_once_and_needs_the_stage_role():
    assert decide(POLICY, _state(), "li", "reject", 1).refused == "WRONG_ROLE"
    out = decide(POLICY, _state(), "zhang", "reject", 1)
    assert out.complete and out.state.status == "rejected"


def test_time_limits_escalate_once_and_proposals_expire():
    st = _state(now=0.0)
    assert overdue(st, 59) is None and overdue(st, 61).name == "desk"
    from dataclasses import replace

    assert overdue(replace(st, escalated=(0,)), 61) is None
    assert not expired(POLICY, st, 3599) and expired(POLICY, st, 3600)


def test_no_roster_is_open_only_under_the_demo_flag():
    # issue 13 item 5: the demo's open policy let any name approve everywhere; now no roster
    # and no `demo_open` means no one decides
    closed = ApprovalPolicy()
    assert not closed.open and closed.user("anyone") is None
    fields = {"action": "approve", "user": "anyone", "ids": ["P1"], "group": "", "reason": "",
              "ts": 1000.0, "request_id": "r1"}  # fmt: skip
    code, why = check_request(closed, "anyone", None, "", fields, 1001, set())
    assert code == "UNKNOWN_USER" and "no approval roster" in why
    open_ = ApprovalPolicy(demo_open=True)
    assert check_request(open_, "anyone", None, "", fields, 1001, set()) == ("", "")
    assert open_.open and open_.user("anyone").roles
    st = ApprovalState.new(open_, "P", "reduce", 1, "anyone", 0)
    assert decide(open_, st, "anyone", "approve", 1).refused == "OWN_PROPOSAL"
    assert decide(open_, st, "", "approve", 1).refused == "UNKNOWN_USER"


def test_signed_requests_replay_and_age():
    fields = {"action": "approve", "user": "wang", "ids": ["P1"], "group": "", "reason": "",
              "ts": 1000.0, "request_id": "r1"}  # fmt: skip
    sig = sign_request("s3cret", **fields)
    ok = check_request(POLICY, "wang", "s3cret", sig, fields, 1001, set())
    assert ok == ("", "")
    assert (
        check_request(POLICY, "wang", "s3cret", sig, fields, 1001, {"r1"})[0] == "REPLAYED_REQUEST"
    )
    assert check_request(POLICY, "wang", "s3cret", sig, fields, 2000, set())[0] == "STALE_REQUEST"
    assert check_request(POLICY, "wang", "s3cret", "", fields, 1001, set())[0] == "UNSIGNED_REQUEST"
    forged = {**fields, "ids": ["P1", "P2"]}
    assert check_request(POLICY, "wang", "s3cret", sig, forged, 1001, set())[0] == "BAD_SIGNATURE"
    # issue 13 item 5: zhang has no secret_env (his secret may live in approval.secrets_file):
    # before, he was treated as not signing and his unsigned request passed
    zhang = {**fields, "user": "zhang"}
    assert check_request(POLICY, "zhang", None, "", zhang, 1001, set())[0] == "UNSIGNED_REQUEST"
    demo = replace(POLICY, demo_open=True)
    assert check_request(demo, "zhang", None, "", zhang, 1001, set()) == ("", "")


def test_a_console_session_vouches_with_the_console_key():
    fields = {"action": "approve", "user": "zhang", "ids": ["P1"], "group": "", "reason": "",
              "ts": 1000.0, "request_id": "r2"}  # fmt: skip
    sig = sign_console("console-key", "sess-ab12", **fields)
    ok = check_request(POLICY, "zhang", None, sig, fields, 1001, set(), "console-key", "sess-ab12")
    assert ok == ("", "")
    for key, session in (("other-key", "sess-ab12"), ("console-key", "sess-other"), (None, "s")):
        code, why = check_request(POLICY, "zhang", None, sig, fields, 1001, set(), key, session)
        assert code == "BAD_SIGNATURE", why
    # the console's voucher is not a person's signature: without the session it is checked
    # against zhang's secret, which he has not got
    assert check_request(POLICY, "zhang", None, sig, fields, 1001, set())[0] == "BAD_SIGNATURE"


def test_emergency_watch_needs_the_whole_duration():
    watch = EmergencyWatch(EmergencyPolicy(enabled=True, risk_degree_above=1.3, for_s=60))
    assert not watch.observe("A", 1.4, 0)
    assert not watch.observe("A", 1.2, 30)  # dipped below: the clock restarts
    assert not watch.observe("A", 1.4, 40)
    assert watch.observe("A", 1.5, 100)
    assert not watch.observe("A", 1.5, 200)  # once
    off = EmergencyWatch(EmergencyPolicy())
    assert not off.observe("B", 9.9, 0) and not off.observe("B", 9.9, 1e9)


def test_example_approval_config_loads_into_the_policy():
    import dataclasses

    from infra import config

    cfg = config.load("examples/approval.toml")
    policy = ApprovalPolicy.from_dict(dataclasses.asdict(cfg.approval))
    assert not policy.open and policy.user("biz.li").signs
    assert [s.approvers for s in policy.stages_for("reduce", 6e6)] == [2]
    assert len(policy.stages_for("liquidate", 1)) == 3 and not policy.emergency.enabled
    with pytest.raises(config.ConfigError, match="no role 'cfo'"):
        config.from_dict({"approval": {"users": [{"name": "x", "roles": ["cfo"]}]}})
