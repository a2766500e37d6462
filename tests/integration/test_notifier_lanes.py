"""Delivery discipline on the real local Ray: the WeCom robot's rate limit respected by queueing
and coalescing (never a 45009), bounded queues that spill to the journal and lose nothing, and a
circuit breaker that fails SMS over to e-mail while Twilio is down."""

from __future__ import annotations

import pytest
import ray

from tests.integration.notify_world import DESK, alert, start_world
from tests.zmq_util import wait_until

N = 30
NOTIFIER = {
    "group_over": 1000,
    "base_delay_s": 0.02,
    "max_delay_s": 0.1,
    "max_attempts": 5,
    "queue_limit": 4,
    "breaker_failures": 3,
    "breaker_cooldown_s": 30.0,
    "rosters": [{"name": "desk", "members": [DESK]}],
    "chains": [
        {
            "name": "lanes",
            "levels": [{"roster": "desk", "steps": [{"channel": "wecom"}, {"channel": "sms"}]}],
        }
    ],
    "routes": [{"chain": "lanes"}],
}


@pytest.fixture  # one world per test
def world(ray_local, tmp_path_factory):
    w = start_world(
        tmp_path_factory.mktemp("lanes"),
        NOTIFIER,
        sink={"wecom_rate_limit": 5, "wecom_rate_window": 2.0},
        channel_extra={
            "wecom": {"rate_limit": 5, "rate_window_s": 2.0, "linger_s": 0.2},
            "sms": {"failover": ["email"]},
        },
        console=False,  # no callbacks needed: the lanes' own bookkeeping is under test
    )
    yield w
    w.stop()


def test_rate_limit_queues_coalesces_spills_and_fails_over_losing_nothing(world) -> None:
    world.sink.fail_next(10_000, "5xx", provider="twilio_sms")  # Twilio is down throughout
    alerts = [alert(f"LANE-{i:02d}") for i in range(N)]
    ray.get(world.notifier.notify.remote(alerts))
    assert wait_until(lambda: len(world.records("escalation.step")) == 2 * N, 10)
    assert ray.get(world.notifier.drain.remote(40))

    steps = world.records("escalation.step")
    wecom_keys = sorted(k for s in steps if s["key"] == "wecom" for k in s["keys"])
    posts = world.sink.messages("wecom")
    carried = sorted(k for m in posts for k in (m["notification_keys"] or [m["idempotency_key"]]))
    assert carried == wecom_keys  # every WeCom notification exactly once
    assert len(posts) < N  # coalesced under the limit
    assert world.sink.stats().get("wecom_rate_limited", 0) == 0  # the robot never said 45009

    stats = ray.get(world.notifier.stats.remote())
    assert stats["spilled"] > 0  # queues stayed bounded; the journal held the rest
    assert stats["breakers"]["sms"] == "open" and stats["failover"] == N
    assert world.sink.messages("twilio_sms") == []
    mails = world.smtp.messages()
    assert sorted(m["subject"].split("账户 ")[1].split(" ")[0] for m in mails) == [
        a.key for a in alerts
    ]
    assert {m["recipient"] for m in mails} == {DESK["email"]}

    failovers = world.records("notification.failover")
    assert len(failovers) == N and all(len(r["to"]) == 1 for r in failovers)
    delivered = {r["ref"] for r in world.records("notification.delivered")}
    assert {r["to"][0] for r in failovers} <= delivered
    assert set(wecom_keys) <= delivered
    assert world.records("notification.failed") == []
    assert world.store().verify() == []
