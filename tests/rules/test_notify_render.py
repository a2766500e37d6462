"""Notifications a person can act on (issue 19): figures in percent and yuan, the worst account
of a group in the rule's direction, the proposal and how to approve it, Beijing time labelled, a
console link, one SMS segment and speakable Chinese for voice."""

from __future__ import annotations

from rules.model import Alert, stable_id
from rules.notify.render import SMS_SEGMENT, render, worst

TS = 1_796_261_465.0  # 2026-12-03 09:31:05 北京时间


def _alert(key: str, value: float, threshold: float, kind: str, **attrs) -> Alert:
    return Alert(
        f"al-{key}", kind + ".warn", key, "critical", f"{key} {kind}", value, threshold, TS, TS,
        attributes={"kind": kind, **attrs},
    )  # fmt: skip


def test_worst_of_a_below_rule_is_the_lowest():
    group = [
        _alert("A1", 0.01996, 0.03, "account.liquidation_distance"),
        _alert("A2", 0.0053, 0.03, "account.liquidation_distance"),
        _alert("A3", 0.025, 0.03, "account.liquidation_distance"),
    ]
    assert worst(group).key == "A2"
    title, text, md, fig = render(group, "https://risk.example.com/")
    assert fig["worst_key"] == "A2" and "A2 0.53%" in text and "最低 lowest" in text
    assert "https://risk.example.com/inbox" in md
    above = [_alert("B1", 0.85, 0.8, "account.risk_degree"),
             _alert("B2", 0.95, 0.8, "account.risk_degree")]  # fmt: skip
    assert worst(above).key == "B2"


def test_one_alert_reads_as_a_risk_manager_reads_it():
    a = _alert("ACC000123", 0.8044, 0.8, "account.risk_degree", equity=1234567.891,
               margin=993_000.0, action={"kind": "reduce", "target": 0.7})  # fmt: skip
    title, text, md, fig = render([a], "https://risk.example.com")
    pid = stable_id("proposal", a.alert_id, "reduce")
    assert "risk_degree: 80.4% (阈值 threshold 80.0%)" in text
    assert "¥1,234,567.89" in text and "¥993,000.00" in md
    assert f"fengkong approve {pid}" in text and fig["proposal_id"] == pid
    assert "→ 风险度 70.0%" in text
    assert "2026-12-03 09:31:05 北京时间" in text and "北京时间" in md
    assert fig["link"] == "https://risk.example.com/account/ACC000123"
    assert len(fig["sms"]) <= SMS_SEGMENT and "80.4%" in fig["sms"]
    assert fig["voice"].startswith("风控告警。账户 A C C 零 零 零 一 二 三，风险度百分之八十点四")
    assert not any(ch.isdigit() for ch in fig["voice"])


def test_an_sms_lane_posts_the_one_segment_form_and_email_the_full_page():
    from rules.escalation import Level, LevelStep
    from rules.notify.inputs import AlertsIn
    from tests.notifier.machine_driver import EMAIL, SMS, Driver, routing

    d = Driver([SMS, EMAIL], routing(Level("desk", 0.0, (LevelStep("sms"), LevelStep("email")))))
    a = _alert("ACC000123", 0.8044, 0.8, "account.risk_degree", equity=1_000_000.0)
    d.apply(AlertsIn((a,)), TS)
    posts = {p.channel: p.message for p in d.tick(TS)}
    assert posts["sms"].text == posts["sms"].fields["sms"] and len(posts["sms"].text) <= 70
    assert "risk_degree: 80.4%" in posts["email"].text and "北京时间" in posts["email"].text
