"""The notification machine without Ray: alerts to pages, the outbox rule, escalation timing,
acknowledgement, provider callbacks and what `settled` means."""

from __future__ import annotations

import pytest

from rules.escalation import Level, LevelStep
from rules.notify import machine
from rules.notify.inputs import APPEND, DURABLE, Ack, AlertsIn, Journaled, ProviderStatus, Tick
from tests.notifier.machine_driver import (
    DESK,
    EMAIL,
    HEAD,
    KEYED,
    SMS,
    WECOM,
    Driver,
    alert,
    routing,
)

CHAIN = routing(
    Level("desk", 0.0, (LevelStep("wecom"), LevelStep("sms", 60.0))),
    Level("head", 300.0, (LevelStep("wecom"), LevelStep("sms"))),
)


def test_alerts_are_journaled_durably_and_held_until_written() -> None:
    d = Driver([WECOM, SMS], CHAIN)
    a = alert("A1")
    eff = machine.apply(d.st, AlertsIn((a,)), 0.0)
    [(durability, records)] = eff.journal
    assert durability == DURABLE
    assert [r["kind"] for r in records] == [
        "notification.accepted",
        "escalation.opened",
        "escalation.step",
        "notification.queued",
    ]
    assert eff.sends == [] and eff.token is not None
    assert machine.apply(d.st, Tick(), 0.0).sends == []  # not written yet: nothing goes out
    assert not d.st.settled()
    d.perform(machine.apply(d.st, Journaled(eff.token), 0.0), 0.0)
    [post] = d.tick(0.0)
    assert post.channel == "wecom" and post.message.mentions == ("13800000001",)
    assert post.message.ack_by == "13800000001" and post.message.alert_id == a.alert_id
    d.answer(post, 0.1, provider_id="w1")
    assert d.st.settled()  # the step at 60 s is not due: it does not count
    [done] = d.kinds("notification.delivered")
    assert done["ref"] == records[-1]["ref"] and done["attempts"] == 1


def test_steps_fire_at_their_time_level_by_level_to_each_roster() -> None:
    d = Driver([WECOM, SMS], CHAIN)
    a = alert("A2")
    d.apply(AlertsIn((a,)), 0.0)
    d.deliver_all(0.0, until=1.0)
    assert [s["step"] for s in d.kinds("escalation.step")] == [0]
    assert d.tick(59.9) == []
    assert machine.apply(d.st, Tick(), 59.5).wake == 60.0  # the timer: the next step's time
    [sms] = d.tick(60.0)
    assert (sms.channel, sms.message.recipient) == ("sms", DESK.phone)
    d.answer(sms, 60.1)
    assert d.tick(299.0) == []
    posts = d.tick(300.0)
    assert sorted((p.channel, p.message.recipient) for p in posts) == [
        ("sms", HEAD.phone),
        ("wecom", ""),
    ]
    assert [(s["step"], s["level"], s["key"]) for s in d.kinds("escalation.step")] == [
        (0, 0, "wecom"),
        (1, 0, "sms"),
        (2, 1, "wecom"),
        (3, 1, "sms"),
    ]
    assert d.st.steps == []  # the chain is exhausted


def test_ack_stops_the_chain_cancels_what_is_queued_and_is_idempotent() -> None:
    d = Driver([WECOM, SMS], CHAIN)
    a = alert("A3")
    d.apply(AlertsIn((a,)), 0.0)
    d.deliver_all(0.0, until=1.0)
    d.tick(60.0)  # the SMS is in flight now
    [sms] = d.sends
    eff = d.apply(Ack(a.alert_id, "zhang", "http"), 61.0)
    assert eff.journal[0][0] == DURABLE and eff.journal[0][1][0]["kind"] == "alert.acked"
    assert eff.reply["state"] == "acked" and eff.reply["already"] is False
    assert d.apply(Ack(a.alert_id, "li", "cli"), 62.0).reply["already"] is True
    d.answer(sms, 62.0, outcome="failed-retryable", error="503")
    assert [r["error"] for r in d.kinds("notification.cancelled")] == ["acknowledged"]
    assert d.tick(400.0) == [] and d.st.settled()
    assert [s["step"] for s in d.kinds("escalation.step")] == [0, 1]
    assert ("ack_s", 61.0, {"via": "http"}) in eff.metrics
    assert d.apply(Ack("nope", "x", "cli"), 63.0).reply is None
    assert d.st.counts["ack_unknown"] == 1


def test_ack_between_queue_and_journal_write_cancels_the_held_ones() -> None:
    d = Driver([WECOM], routing())
    a = alert("A4")
    eff = machine.apply(d.st, AlertsIn((a,)), 0.0)
    d.apply(Ack(a.alert_id, "zhang", "voice"), 0.1)
    d.perform(machine.apply(d.st, Journaled(eff.token), 0.2), 0.2)
    assert d.tick(0.3) == [] and d.st.settled()
    assert len(d.kinds("notification.cancelled")) == 1


def test_a_correlator_group_over_the_limit_is_one_digest_page_else_one_page_each() -> None:
    d = Driver([EMAIL], routing(Level("desk", 0.0, (LevelStep("email"),))), group_over=5)
    big = {"id": "g1", "size": 7}
    small = {"id": "g2", "size": 3}
    alerts = [alert(f"G{i}", group=big) for i in range(7)]
    alerts += [alert(f"S{i}", group=small) for i in range(3)] + [alert("LONE")]
    d.apply(AlertsIn(tuple(alerts)), 0.0)
    pages = d.kinds("escalation.opened")
    assert sorted(len(p["alert_ids"]) for p in pages) == [1, 1, 1, 1, 7]
    digest = next(p for p in pages if len(p["alert_ids"]) == 7)
    assert all(f"G{i}" in digest["text"] for i in range(7))
    d.apply(AlertsIn(tuple(alerts[:7])), 1.0)  # the same group again: no second page
    assert len(d.kinds("escalation.opened")) == 5 and d.st.counts["deduplicated"] == 1


def test_provider_status_is_journaled_for_a_known_key_only() -> None:
    d = Driver([SMS], routing(Level("desk", 0.0, (LevelStep("sms"),))))
    d.apply(AlertsIn((alert("A5"),)), 0.0)
    d.deliver_all(0.0)
    [q] = d.kinds("notification.queued")
    assert d.apply(ProviderStatus(q["ref"], {"MessageStatus": "delivered"}), 1.0).reply is True
    [s] = d.kinds("notification.status")
    assert (s["key"], s["status"]) == ("sms", "delivered")
    assert d.st.per_channel["sms.confirmed"] == 1
    assert d.apply(ProviderStatus("nobody", {"MessageStatus": "x"}), 1.0).reply is False
    assert d.st.counts["status_unknown"] == 1


def test_default_chain_sends_to_each_channels_own_recipients() -> None:
    from rules.notify.model import LaneSpec
    from rules.notify.routing import build_routing

    class Cfg:
        rosters = chains = routes = ()

    lanes = [LaneSpec("sms", "twilio_sms", recipients=("+1", "+2")), WECOM]
    d = Driver(lanes, build_routing(Cfg(), ["sms", "wecom"]))
    d.apply(AlertsIn((alert("A6"),)), 0.0)
    posts = d.tick(0.0)
    assert sorted((p.channel, p.message.recipient) for p in posts) == [
        ("sms", "+1"),
        ("sms", "+2"),
        ("wecom", ""),
    ]


def test_unknown_input_and_failover_to_unknown_channel_are_refused() -> None:
    d = Driver([WECOM])
    with pytest.raises(TypeError, match="unknown input"):
        machine.apply(d.st, object(), 0.0)
    from rules.notify.model import LaneSpec

    with pytest.raises(ValueError, match="failover to unknown"):
        Driver([LaneSpec("sms", "twilio_sms", failover=("pager",))])


def test_outcomes_are_appended_not_made_durable_on_an_idempotent_lane() -> None:
    # a provider with an idempotency key (none shipped has one: Twilio's create takes none)
    d = Driver([KEYED], routing(Level("desk", 0.0, (LevelStep("keyed"),))))
    d.apply(AlertsIn((alert("A7"),)), 0.0)
    d.deliver_all(0.0)
    assert d.entries[-1] == (APPEND, ["notification.attempt", "notification.delivered"])
