"""A restart is an input: replaying the journal through the same `apply` resumes what was owed
and never sends again what the journal holds as delivered."""

from __future__ import annotations

from rules.escalation import Level, LevelStep
from rules.notify import machine
from rules.notify.inputs import Ack, AlertsIn
from tests.notifier.machine_driver import EMAIL, SMS, WECOM, Driver, alert, routing

CHAIN = routing(
    Level("desk", 0.0, (LevelStep("sms"), LevelStep("email"), LevelStep("wecom"))),
    Level("head", 300.0, (LevelStep("sms"),)),
)
LANES = [SMS, EMAIL, WECOM]


def restarted(before: Driver, now: float) -> Driver:
    after = Driver(LANES, CHAIN, session="s2-")
    after.journal = list(before.journal)  # the same journal file
    after.apply(before.replay(), now)
    return after


def test_replay_resends_only_what_has_no_final_outcome() -> None:
    d = Driver(LANES, CHAIN)
    d.apply(AlertsIn(tuple(alert(f"C{i}") for i in range(3))), 0.0)
    posts = d.tick(0.0)
    assert len(posts) == 9
    by_channel = {c: [p for p in posts if p.channel == c] for c in ("sms", "email", "wecom")}
    for p in by_channel["sms"]:
        d.answer(p, 0.1)  # delivered and journaled
    d.answer(by_channel["email"][0], 0.1)
    # the process dies: 2 e-mails and 3 WeCom posts in flight ("sending" journaled)
    delivered = {r["ref"] for r in d.kinds("notification.delivered")}
    assert len(delivered) == 4

    after = restarted(d, 5.0)
    resumed = after.kinds("notification.resumed")
    assert len(resumed) == 5 and all(r["uncertain"] and not r["idempotent"] for r in resumed)
    again = after.tick(5.0)
    sent_again = {p.message.idempotency_key for p in again}
    assert sent_again == {r["ref"] for r in resumed}
    assert not sent_again & delivered  # nothing journaled as delivered goes out twice
    for p in again:
        after.answer(p, 5.1)
    assert after.st.settled()
    queued = {r["ref"] for r in after.kinds("notification.queued")}
    assert {r["ref"] for r in after.kinds("notification.delivered")} == queued


def test_replay_keeps_the_escalation_plan_and_its_fired_steps() -> None:
    d = Driver(LANES, CHAIN)
    a = alert("E1")
    d.apply(AlertsIn((a,)), 0.0)
    d.deliver_all(0.0, until=1.0)
    after = restarted(d, 10.0)
    assert after.tick(10.0) == []  # step 0..2 fired before the restart
    [page] = machine.alerts(after.st)
    assert page["steps_fired"] == [0, 1, 2] and page["state"] == "open"
    assert [p.message.recipient for p in after.tick(300.0)] == ["+8613800000002"]
    assert len(after.kinds("escalation.step")) == 4


def test_replay_of_an_acknowledged_page_cancels_what_it_still_had_queued() -> None:
    d = Driver(LANES, CHAIN)
    a = alert("E2")
    d.apply(AlertsIn((a,)), 0.0)  # queued, never sent
    d.apply(Ack(a.alert_id, "zhang", "cli"), 0.5)
    d.journal = [r for r in d.journal if r["kind"] != "notification.cancelled"]  # lost in a crash
    after = restarted(d, 1.0)
    assert len(after.kinds("notification.cancelled")) == 3
    assert after.tick(400.0) == [] and after.st.settled()
    assert after.apply(Ack(a.alert_id, "li", "cli"), 401.0).reply["already"] is True


def test_replay_pages_accepted_alerts_no_page_covers_and_skips_unreadable_records() -> None:
    d = Driver(LANES, CHAIN)
    a = alert("E3")
    d.journal = [
        {"kind": "notification.accepted", "ref": a.alert_id, "alert": a.to_record(), "seq": 1},
        {"kind": "notification.queued", "ref": "old", "key": "sms", "alert_ids": [], "seq": 2},
    ]
    after = restarted(d, 2.0)
    assert after.st.counts["resumed_alerts"] == 1 and after.st.counts["resume_unreadable"] == 1
    [bad] = after.kinds("notification.unresumable")
    assert bad["ref"] == "old" and "TypeError" in bad["reason"]
    assert [p["page_id"] for p in machine.alerts(after.st)] == [a.alert_id]
    assert {p.channel for p in after.tick(2.0)} == {"sms", "email", "wecom"}
