"""Delivery discipline of the notification machine without Ray: retry with backoff and seeded
jitter, permanent and uncertain failures, the circuit breaker failing over to the same person on
another channel, WeCom's rate limit met by coalescing, and bounded queues that spill to the
journal and read back."""

from __future__ import annotations

from rules.escalation import Level, LevelStep
from rules.notify.backoff import backoff_delay
from rules.notify.inputs import DURABLE, FINAL, RETRYABLE, UNCERTAIN, AlertsIn, Loaded, Tick
from rules.notify.model import LaneSpec
from tests.notifier.machine_driver import (
    DESK,
    EMAIL,
    KEYED,
    SMS,
    WECOM,
    Driver,
    alert,
    routing,
)

ONLY_SMS = routing(Level("desk", 0.0, (LevelStep("sms"),)))


def test_retryable_failures_back_off_with_seeded_jitter_then_fail() -> None:
    import random

    d = Driver([SMS], ONLY_SMS, max_attempts=3, base_delay_s=1.0, max_delay_s=10.0, seed=42)
    d.apply(AlertsIn((alert("R1"),)), 0.0)
    rng = random.Random(42)
    expected = [backoff_delay(n, base_delay=1.0, max_delay=10.0, rng=rng) for n in (1, 2)]
    now = 0.0
    [post] = d.tick(now)
    for delay in expected:
        d.answer(post, now, outcome=RETRYABLE, error="HTTP 503")
        assert d.tick(now + delay - 1e-6) == []  # not before its time
        assert d.apply(Tick(), now + delay - 1e-6).wake == now + delay
        [post] = d.tick(now + delay)
        now += delay
    d.answer(post, now, outcome=RETRYABLE, error="HTTP 503")
    [failed] = d.kinds("notification.failed")
    assert failed["attempts"] == 3 and failed["error"] == "HTTP 503"
    assert [r["attempt"] for r in d.kinds("notification.attempt")] == [1, 2, 3]
    assert d.st.per_channel["sms.retried"] == 2 and d.st.settled()


def test_a_permanent_failure_is_not_retried() -> None:
    d = Driver([SMS], ONLY_SMS)
    d.apply(AlertsIn((alert("R2"),)), 0.0)
    [post] = d.tick(0.0)
    d.answer(post, 0.1, outcome=FINAL, status=400, code=21211, error="invalid number")
    [failed] = d.kinds("notification.failed")
    assert failed["attempts"] == 1 and d.tick(10.0) == [] and d.st.settled()
    assert d.st.lanes["sms"].breaker.state == "closed"  # the provider is up: it answered


def test_uncertain_is_resent_only_where_the_provider_dedups() -> None:
    d = Driver(
        [KEYED, SMS, EMAIL],
        routing(Level("desk", 0.0, (LevelStep("keyed"), LevelStep("sms"), LevelStep("email")))),
    )
    d.apply(AlertsIn((alert("R3"),)), 0.0)
    posts = {p.channel: p for p in d.tick(0.0)}
    # SMS and e-mail have no idempotency key: "sending" is committed before the post (issue 13
    # item 6); the keyed provider's posts are not bracketed
    assert {r["key"] for r in d.kinds("notification.sending")} == {"sms", "email"}
    for channel in ("keyed", "sms", "email"):
        d.answer(posts[channel], 0.1, outcome=UNCERTAIN, error="RuntimeError: bug")
    assert {r["key"] for r in d.kinds("notification.failed")} == {"sms", "email"}
    [again] = d.tick(1.0)
    assert again.channel == "keyed" and again.message == posts["keyed"].message


def test_breaker_opens_and_fails_over_to_the_same_person_by_email() -> None:
    sms = LaneSpec("sms", "twilio_sms", failover=("email",))
    d = Driver([sms, EMAIL], ONLY_SMS, breaker_failures=2, breaker_cooldown_s=30.0)
    alerts = tuple(alert(f"B{i}") for i in range(4))
    d.apply(AlertsIn(alerts), 0.0)
    posts = d.tick(0.0)
    assert [p.channel for p in posts] == ["sms"] * 4
    for p in posts[:2]:
        d.answer(p, 0.1, outcome=RETRYABLE, error="HTTP 503")
    assert d.st.lanes["sms"].breaker.state == "open"
    for p in posts[2:]:  # answered while open: straight to failover
        d.answer(p, 0.2, outcome=RETRYABLE, error="HTTP 503")
    d.deliver_all(0.3, until=20.0)  # the first two wait out their retry, find it open
    failovers = d.kinds("notification.failover")
    assert len(failovers) == 4 and all(len(r["to"]) == 1 for r in failovers)
    mails = [q for q in d.kinds("notification.queued") if q["key"] == "email"]
    assert {q["recipient"] for q in mails} == {DESK.email}
    delivered = {r["ref"] for r in d.kinds("notification.delivered")}
    assert {r["to"][0] for r in failovers} == delivered
    assert d.kinds("notification.failed") == []
    # a new SMS while the breaker is open goes over at once, without a post to Twilio
    d.apply(AlertsIn((alert("B9"),)), 1.0)
    assert [p.channel for p in d.tick(1.0)] == ["email"]


def test_wecom_limit_is_met_by_coalescing_each_notification_once() -> None:
    wecom = LaneSpec("wecom", "wecom", rate=(5, 2.0), linger_s=0.2)
    d = Driver([wecom], routing(), coalesce_max=40)
    n = 30
    d.apply(AlertsIn(tuple(alert(f"W{i:02d}") for i in range(n))), 0.0)
    sent_at: list[float] = []
    now = 0.0
    carried: list[str] = []
    while now < 20.0 and not (d.st.settled() and not d.sends):
        for p in d.tick(now):
            sent_at.append(now)
            carried += list(p.message.member_keys) or [p.message.idempotency_key]
            d.answer(p, now)
        now = round(now + 0.05, 6)
    queued = sorted(q["ref"] for q in d.kinds("notification.queued"))
    assert sorted(carried) == queued  # every notification exactly once
    assert len(sent_at) < n  # coalesced
    assert all(sum(1 for t in sent_at if s <= t < s + 2.0) <= 5 for s in sent_at)  # the limit
    batched = [r for r in d.kinds("notification.delivered") if r["batch"]]
    assert batched and len({r["batch"] for r in batched}) < len(batched)


def test_a_full_lane_spills_to_the_journal_and_reads_back() -> None:
    d = Driver([SMS], ONLY_SMS, queue_limit=4)
    d.apply(AlertsIn(tuple(alert(f"Q{i:02d}") for i in range(12))), 0.0)
    assert d.st.counts["spilled"] == 8 and d.st.lanes["sms"].depth() == 12
    now, first = 0.0, True
    while d.loads or d.sends or not d.st.settled():
        for p in d.tick(now):
            d.answer(p, now)
        for channel, keys in d.loads:  # the shell reads them back from the journal
            latest = {r["ref"]: r for r in d.kinds("notification.queued")}
            lost, first = (keys[0] if first else None), False
            found = tuple((k, None if k == lost else latest[k]) for k in keys)
            d.loads = []
            d.apply(Loaded(channel, found), now)
        now += 0.1
        assert now < 10.0
    delivered = d.kinds("notification.delivered")
    [lost] = d.kinds("notification.failed")
    assert lost["error"] == "not in the journal"
    assert len(delivered) == 11 and lost["ref"] not in {r["ref"] for r in delivered}


def test_a_late_provider_answer_goes_to_the_failover_not_a_second_post() -> None:
    """notify-1000's double delivery under load: the provider stored the post, but its answer
    came after the channel's timeout (the sink starved of CPU), the channel called the timeout
    retryable and the machine posted again — WeCom and SMTP keep both. Interleaving: post →
    provider stores → client timeout → RETRYABLE → a second post of the same key. With a
    failover the second copy goes nowhere: the person is reached on the failover channel."""
    wecom = LaneSpec("wecom", "wecom", failover=("sms",))
    route = routing(Level("desk", 0.0, (LevelStep("wecom"),)))
    d = Driver([wecom, SMS], route)
    d.apply(AlertsIn((alert("R9"),)), 0.0)
    [post] = d.tick(0.0)
    d.answer(post, 0.6, outcome=RETRYABLE, error="timeout after 0.5s")
    d.deliver_all(0.6, until=30.0)
    assert d.st.per_channel["wecom.sent"] == 1  # posted once on WeCom, not twice
    assert len(d.kinds("notification.failover")) == 1
    assert [r["key"] for r in d.kinds("notification.delivered")] == ["sms"]
    assert d.st.counts["unanswered_failed_over"] == 1 and d.st.settled()


def test_without_a_way_out_a_late_answer_is_resent_at_least_once() -> None:
    """No failover: resending is the one way not to lose the page (the duplicate's cause,
    kept on purpose: a risk notification twice beats none)."""
    d = Driver([WECOM], routing(Level("desk", 0.0, (LevelStep("wecom"),))), base_delay_s=0.1,
               max_delay_s=0.2)  # fmt: skip
    d.apply(AlertsIn((alert("R11"),)), 0.0)
    [post] = d.tick(0.0)
    d.answer(post, 0.6, outcome=RETRYABLE, error="timeout after 0.5s")
    [again] = d.tick(2.0)
    assert again.message.idempotency_key == post.message.idempotency_key
    d.answer(again, 2.1)
    assert len(d.kinds("notification.delivered")) == 1 and d.st.settled()


def test_a_refused_connection_or_5xx_is_still_retried_without_provider_dedup() -> None:
    d = Driver([WECOM], routing(Level("desk", 0.0, (LevelStep("wecom"),))), base_delay_s=0.1,
               max_delay_s=0.2)  # fmt: skip
    d.apply(AlertsIn((alert("R10"),)), 0.0)
    [post] = d.tick(0.0)
    d.answer(post, 0.1, outcome=RETRYABLE, error="ConnectionError: refused")
    [post] = d.tick(1.0)
    d.answer(post, 1.1, outcome=RETRYABLE, status=503, error="HTTP 503")
    [post] = d.tick(2.0)
    d.answer(post, 2.1)
    assert len(d.kinds("notification.delivered")) == 1 and d.st.settled()


def test_every_shipped_channel_is_bracketed_since_none_has_provider_dedup() -> None:
    """Twilio's Messages and Calls create take no idempotency key (docs/delivery.md), like the
    WeCom robot and SMTP: each post of every shipped channel kind gets `sending` first."""
    from gateways.channels import CHANNEL_TYPES

    assert set(CHANNEL_TYPES) == {"wecom", "twilio_sms", "twilio_voice", "email"}
    assert not any(LaneSpec(kind, kind).idempotent for kind in CHANNEL_TYPES)
    voice = LaneSpec("voice", "twilio_voice")
    d = Driver([voice], routing(Level("desk", 0.0, (LevelStep("voice"),))))
    d.apply(AlertsIn((alert("V1"),)), 0.0)
    [post] = d.tick(0.0)
    assert [r["key"] for r in d.kinds("notification.sending")] == ["voice"]
    before = len(d.entries)
    d.answer(post, 0.1, provider_id="CA1")
    assert d.entries[before:] == [(DURABLE, ["notification.attempt", "notification.delivered"])]
