"""Pure parts of notification delivery: escalation plans, routing, rosters, breaker, rate window,
signed reply links and the outbox arithmetic a restart relies on."""

from __future__ import annotations

import pytest

from infra import config
from rules.escalation import (
    Chain,
    Contact,
    Level,
    LevelStep,
    Roster,
    Route,
    due,
    expand,
    next_at,
    on_call,
    route,
)
from rules.notify.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from rules.notify.links import check_link, link_record, link_url, token_digest
from rules.notify.model import Pending
from rules.notify.outbox import resume_state
from rules.notify.ratelimit import SlidingWindow

DESK = Level("risk-desk", 0.0, (LevelStep("wecom"), LevelStep("sms", 60), LevelStep("voice", 180)))
HEAD = Level("business-head", 300.0, (LevelStep("wecom"), LevelStep("voice", 60)))
CHAIN = Chain("standard", (DESK, HEAD))


def test_chain_expands_in_time_order_across_levels() -> None:
    steps = expand(CHAIN)
    assert [(s.at_s, s.level, s.channel) for s in steps] == [
        (0.0, 0, "wecom"),
        (60.0, 0, "sms"),
        (180.0, 0, "voice"),
        (300.0, 1, "wecom"),
        (360.0, 1, "voice"),
    ]
    assert [s.index for s in steps] == list(range(5))
    assert steps[3].roster == "business-head"


def test_due_and_next_follow_start_time_and_fired_steps() -> None:
    steps = expand(CHAIN)
    assert [s.channel for s in due(steps, 1000.0, 1000.0, [])] == ["wecom"]
    assert [s.index for s in due(steps, 1000.0, 1200.0, [0])] == [1, 2]
    assert next_at(steps, 1000.0, [0, 1]) == 1180.0
    assert next_at(steps, 1000.0, range(5)) is None


def test_first_matching_route_wins_by_severity_scope_and_group() -> None:
    routes = (
        Route("exec", min_severity="emergency"),
        Route("metals", keys=("cu*", "al*"), dimensions=("contract",)),
        Route("grpA", min_severity="warning", groups=("grpA/*",)),
    )
    assert route(routes, "emergency", "account", "8801") == "exec"
    assert route(routes, "info", "contract", "cu2601") == "metals"
    assert route(routes, "info", "account", "cu-acct") is None  # dimension does not match
    assert route(routes, "critical", "account", "8801", "grpA/sub1/unit01") == "grpA"
    assert route(routes, "info", "account", "8801", "grpA/sub1") is None  # below warning


def test_roster_rotation_picks_one_member_in_turn() -> None:
    people = (Contact("zhang", "+8613800000001"), Contact("li", "+8613800000002"))
    assert on_call(Roster("desk", people), 5.0) == people
    rota = Roster("desk", people, rotation_s=3600, rotation_start=0.0)
    assert [on_call(rota, t)[0].name for t in (10, 3700, 7300)] == ["zhang", "li", "zhang"]
    assert people[0].address("wecom") == "13800000001"
    assert people[0].address("email") == ""


def test_breaker_opens_after_threshold_and_probes_once_after_cooldown() -> None:
    b = CircuitBreaker(threshold=3, cooldown_s=10.0)
    for t in (0.0, 1.0):
        assert b.allow(t)
        b.record(False, t)
    assert b.state == CLOSED
    b.record(False, 2.0)
    assert b.state == OPEN and b.is_open(5.0) and not b.allow(5.0)
    assert b.allow(12.0) and b.state == HALF_OPEN  # one probe…
    assert not b.allow(12.1)  # …at a time
    b.record(False, 12.2)
    assert b.state == OPEN and b.trips == 2  # the failed probe opens it again
    assert b.allow(22.3)
    b.record(True, 22.4)
    assert b.state == CLOSED and b.allow(22.5)


def test_sliding_window_waits_instead_of_exceeding() -> None:
    w = SlidingWindow(limit=2, window_s=60.0)
    w.take(0.0)
    w.take(1.0)
    assert w.remaining(2.0) == 0 and w.wait_s(2.0) == pytest.approx(58.0)
    assert w.wait_s(60.0) == 0.0 and w.remaining(61.0) == 2
    with pytest.raises(ValueError):
        SlidingWindow(0, 60)


def test_reply_link_is_checked_by_its_digest_and_expires() -> None:
    """Was: an HMAC-signed link (gateways/operator_http/links.py, gone). Now the journal keeps
    the token's digest only (issue 13 item 7), and the console checks a token by hashing it."""
    link = link_url("http://127.0.0.1:9/", "alert/1", "tok-abc")
    assert link == "http://127.0.0.1:9/ack/alert%2F1?t=tok-abc"
    rec = link_record("alert/1", "zhang", "tok-abc", expires_ts=1060.0)
    assert rec["token_sha256"] == token_digest("tok-abc") and "tok-abc" not in str(rec)
    assert check_link([rec], "alert/1", "tok-abc", now=1000.0).by == "zhang"
    assert check_link([rec], "alert/1", "tok-abc", now=1061.0).refused == "LINK_EXPIRED"
    assert check_link([rec], "alert/1", "other", now=1000.0).refused == "BAD_TOKEN"
    assert check_link([rec], "alert/2", "tok-abc", now=1000.0).refused == "BAD_TOKEN"
    assert check_link([rec], "alert/1", rec["token_sha256"], now=1000.0).refused == "BAD_TOKEN"
    assert check_link([rec], "alert/1", "", now=1000.0).refused == "MALFORMED_LINK"


def _queued(key: str, page: str = "p1") -> dict:
    p = Pending(key, "sms", "+8613800000001", page, [page], "critical", "t", "x", None, {}, 1.0)
    return p.queued_record()


def test_resume_owes_queued_without_outcome_and_flags_uncertain_sends() -> None:
    by_kind = {
        "notification.queued": [_queued("k1"), _queued("k2"), _queued("k3"), _queued("k4")],
        "notification.delivered": [{"ref": "k1"}],
        "notification.failover": [{"ref": "k2"}],
        "notification.sending": [{"ref": "k3", "try": "a"}, {"ref": "k4", "try": "b"}],
        "notification.attempt": [{"ref": "k4", "try": "b"}],
        "escalation.opened": [{"ref": "p1", "alert_ids": ["p1"]}],
        "escalation.step": [{"ref": "p1", "step": 0}, {"ref": "p1", "step": 1}],
        "notification.accepted": [
            {"alert": {"alert_id": "p1"}},
            {"alert": {"alert_id": "a9"}},
            {"alert": {"alert_id": "a9"}},
        ],
    }
    state = resume_state(by_kind)
    assert [(p.key, p.uncertain, p.resumed) for p in state.pending] == [
        ("k3", True, True),
        ("k4", False, True),
    ]
    assert state.pending[0].recipient == "+8613800000001" and state.pending[0].channel == "sms"
    assert state.fired == {"p1": {0, 1}}
    assert [a["alert_id"] for a in state.unpaged] == ["a9"]


def test_config_checks_rosters_chains_and_routes() -> None:
    cfg = config.from_dict(
        {
            "notifier": {
                "rosters": [{"name": "desk", "members": [{"name": "zhang", "phone": "+86138"}]}],
                "chains": [
                    {"name": "std", "levels": [{"roster": "desk", "steps": [{"channel": "w"}]}]}
                ],
                "routes": [{"chain": "std", "min_severity": "critical"}],
                "operator": {"link_ttl_s": 600},
            }
        }
    )
    assert cfg.notifier.chains[0].levels[0].steps[0].channel == "w"
    assert cfg.notifier.operator.link_ttl_s == 600
    # the stdlib endpoint's keys are gone (issue 16): the error says where they went
    with pytest.raises(config.ConfigError, match=r"notifier.operator.port: .*\[console\] port"):
        config.from_dict({"notifier": {"operator": {"port": 18999}}})
    with pytest.raises(config.ConfigError, match=r"approval.http_port: .*/api/decisions"):
        config.from_dict({"approval": {"http_port": 0}})
    with pytest.raises(config.ConfigError, match=r"levels\[0\].roster: no roster 'ops'"):
        config.from_dict({"notifier": {"chains": [{"name": "c", "levels": [{"roster": "ops"}]}]}})
    with pytest.raises(config.ConfigError, match=r"routes\[0\].chain: no chain 'nope'"):
        config.from_dict({"notifier": {"routes": [{"chain": "nope"}]}})
    with pytest.raises(config.ConfigError, match="min_severity"):
        config.from_dict({"notifier": {"routes": [{"chain": "default", "min_severity": "loud"}]}})
    with pytest.raises(config.ConfigError, match="channels.*type"):
        config.from_dict({"channels": [{"name": "x", "type": "pager"}]})


def test_resume_skips_journal_records_it_cannot_read_and_says_why():
    from rules.notify.outbox import resume_state

    old = {
        "seq": 7,
        "ref": "k1",
        "key": "wecom",
        "alert_ids": ["a1"],
        "recipient": "",
        "title": "x",
    }
    state = resume_state({"notification.queued": [old]})
    assert state.pending == []
    assert state.unreadable[0]["seq"] == 7 and "TypeError" in state.unreadable[0]["reason"]
