"""A post in flight at a crash (issue 13 item 6). WeCom's robot and SMTP cannot recognise a
resent message, so each post is bracketed in the journal: `notification.sending` committed
before it, the answer (`accepted`: the attempt ok, `notification.delivered`) committed after it.
A restart re-sends only what is stuck in `sending` — never what the provider answered, never a
retry that was booked — and names each re-send with its stuck attempt (try id, sending time)."""

from __future__ import annotations

from rules.escalation import Level, LevelStep
from rules.notify.inputs import DURABLE, RETRYABLE, AlertsIn
from tests.notifier.machine_driver import EMAIL, SMS, WECOM, Driver, alert, routing

CHAIN = routing(Level("desk", 0.0, (LevelStep("wecom"), LevelStep("email"), LevelStep("sms"))))
LANES = [WECOM, EMAIL, SMS]


def _restart(before: Driver, now: float) -> Driver:
    after = Driver(LANES, CHAIN, session="s2-")
    after.journal = list(before.journal)
    after.apply(before.replay(), now)
    return after


def test_posts_without_provider_dedup_are_bracketed_by_durable_records() -> None:
    d = Driver(LANES, CHAIN)
    d.apply(AlertsIn((alert("F1"),)), 0.0)
    posts = {p.channel: p for p in d.tick(0.0)}
    assert set(posts) == {"wecom", "email", "sms"}
    sending = d.kinds("notification.sending")
    # Twilio too since it was checked (docs/delivery.md): Messages create takes no idempotency
    # key, so no provider recognises a resend and every post is bracketed
    assert {r["key"] for r in sending} == {"wecom", "email", "sms"}
    assert (DURABLE, ["notification.sending", "notification.sending", "notification.sending"]) in (
        d.entries
    )
    before = len(d.entries)
    d.answer(posts["wecom"], 0.1, provider_id=None, code=0)  # WeCom robot: errcode 0
    assert d.entries[before:] == [(DURABLE, ["notification.attempt", "notification.delivered"])]
    before = len(d.entries)
    d.answer(posts["sms"], 0.1, provider_id="SM1")
    assert d.entries[before:] == [(DURABLE, ["notification.attempt", "notification.delivered"])]


def test_restart_resends_only_what_is_stuck_in_sending() -> None:
    d = Driver(LANES, CHAIN)
    d.apply(AlertsIn(tuple(alert(f"S{i}") for i in range(3))), 0.0)
    posts = d.tick(0.0)
    wecom = [p for p in posts if p.channel == "wecom"]
    email = [p for p in posts if p.channel == "email"]
    d.answer(wecom[0], 0.1)  # accepted, and booked: never sent again
    d.answer(email[0], 0.1, outcome=RETRYABLE, error="SMTP 451")  # booked: a plain retry
    for p in [p for p in posts if p.channel == "sms"]:
        d.answer(p, 0.1)
    stuck = {p.message.idempotency_key: p.try_id for p in wecom[1:] + email[1:]}
    # the process dies here: wecom[1:], email[1:] are in flight; email[0] waits for its retry
    after = _restart(d, 5.0)
    resumed = {r["ref"]: r for r in after.kinds("notification.resumed")}
    uncertain = {k for k, r in resumed.items() if r["uncertain"]}
    assert uncertain == set(stuck)  # only what has `sending` and no answer
    for key, try_id in stuck.items():
        assert resumed[key]["try_id"] == try_id and resumed[key]["sending_ts"] is not None
    retry_key = email[0].message.idempotency_key
    assert retry_key in resumed and not resumed[retry_key]["uncertain"]
    delivered_key = wecom[0].message.idempotency_key
    assert delivered_key not in resumed
    again = after.tick(5.0)
    assert delivered_key not in {p.message.idempotency_key for p in again}
    for p in again:
        after.answer(p, 5.1)
    after.deliver_all(5.2, until=30.0)
    queued = {r["ref"] for r in after.kinds("notification.queued")}
    assert {r["ref"] for r in after.kinds("notification.delivered")} == queued
