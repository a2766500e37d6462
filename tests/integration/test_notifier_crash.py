"""The outbox on the real local Ray: kill the Notifier's process while it sends, let Ray restart
it, and check from the providers' side that every notification arrived exactly once and from
the journal's side that the restarted actor resumed each one it still owed."""

from __future__ import annotations

import collections
import os
import signal

import pytest
import ray

from tests.integration.notify_world import DESK, alert, start_world
from tests.zmq_util import wait_until

N = 40


@pytest.fixture  # one world per test
def world(ray_local, tmp_path_factory):
    settings = {
        "group_over": 1000,
        "base_delay_s": 0.05,
        "max_delay_s": 0.2,
        "workers": 4,
        "rosters": [{"name": "desk", "members": [DESK]}],
        "chains": [
            {
                "name": "all",
                "levels": [
                    {
                        "roster": "desk",
                        "steps": [
                            {"channel": "sms"},
                            {"channel": "voice"},
                            {"channel": "email"},
                            {"channel": "wecom"},
                        ],
                    }
                ],
            }
        ],
        "routes": [{"chain": "all"}],
    }
    # No console: the Notifier serves no HTTP (issue 16), and this test needs no callbacks.
    w = start_world(tmp_path_factory.mktemp("crash"), settings, console=False)
    yield w
    w.stop()


def per_key(messages: list[dict]) -> collections.Counter:
    """How many times each notification reached a recipient (a coalesced post counts for each
    notification it carries)."""
    seen: collections.Counter = collections.Counter()
    for m in messages:
        for key in m.get("notification_keys") or [m["idempotency_key"]]:
            seen[key] += 1
    return seen


def test_killed_mid_send_resumes_and_delivers_each_pending_notification_once(world) -> None:
    # Twilio accepts at once but answers late: at the kill, requests are accepted and unanswered.
    world.sink.latency_s = {"twilio_sms": 0.4, "twilio_voice": 0.4}
    pid = ray.get(world.notifier.pid.remote())
    ray.get(world.notifier.notify.remote([alert(f"CRASH-{i:02d}") for i in range(N)]))
    assert wait_until(lambda: len(world.sink.messages("twilio_sms")) >= 4, 10)
    os.kill(pid, signal.SIGKILL)  # the actor's worker process dies mid-send; Ray restarts it

    assert wait_until(lambda: ray.get(world.notifier.pid.remote()) != pid, 30)
    assert ray.get(world.notifier.drain.remote(60))
    stats = ray.get(world.notifier.stats.remote())
    assert stats["resumed"] > 0  # the restart found notifications it still owed

    queued = {r["ref"]: r for r in world.records("notification.queued")}
    assert len(queued) == 4 * N
    delivered = {r["ref"]: r for r in world.records("notification.delivered")}
    assert set(delivered) == set(queued)  # nothing lost
    resumed = world.records("notification.resumed")
    assert {r["ref"] for r in resumed} <= set(queued)
    for r in resumed:  # each resumed one was delivered after it was resumed
        assert delivered[r["ref"]]["seq"] > r["seq"]

    seen = per_key(world.messages())
    assert set(seen) == set(queued)
    # Exactly once from the recipient's side. The one exception the outbox can name but not
    # prevent: a post to a provider without idempotency in flight at the kill — every shipped
    # provider, Twilio included (its Messages and Calls take no key, and its fake no longer
    # deduplicates, so the SMS and calls accepted but unanswered here count: docs/delivery.md).
    uncertain = {r["ref"] for r in resumed if r["uncertain"] and not r["idempotent"]}
    assert {k for k, n in seen.items() if n > 1} <= uncertain
    assert all(n <= 2 for n in seen.values())
    twilio = [k for k, r in queued.items() if r["key"] in ("sms", "voice")]
    assert all(seen[k] == 1 or k in uncertain for k in twilio)
    assert world.store().verify() == []
