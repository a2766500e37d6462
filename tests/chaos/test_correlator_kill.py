"""kill -9 of the Correlator mid-group (issue 13 items 1 and 9): alerts wait in the group
stage (`group_wait_s`) when the process dies. Exactly once on alerts and their pages: every
alert journaled is paged exactly once across the kill, a shard's retried batch after the
restart raises no second alert, and every record each Correlator process numbered is in the
journal."""

from __future__ import annotations

import collections
import time

import pytest
import ray

from infra.audit import AuditStore
from rules.model import RiskEvent
from tests.chaos.kill import kill_when, wait_restarted
from tests.integration.harness import start_harness
from tests.zmq_util import wait_until

RULES = """
[hygiene]
group_by = ["rule_id"]
group_wait_s = 2.0
group_interval_s = 1.0

[[rules]]
id = "r.warn"
threshold = 0.8
rearm = 0.75
"""


@pytest.fixture
def world(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chaos_correlator")
    rules = tmp / "rules.toml"
    rules.write_text(RULES)
    h = start_harness(tmp, {"rb2601": 3000.0}, ["rb"], rules_files=[str(rules)])
    yield h
    h.stop()


def _events(prefix: str, n: int) -> list[RiskEvent]:
    now = time.time()
    return [
        RiskEvent("r.warn", "account.risk_degree", f"{prefix}{i:03d}", "warning", 0.9, 0.8, now,
                  now, 1)
        for i in range(n)
    ]  # fmt: skip


def _journal(h, kind: str) -> list[dict]:
    ray.get(h.system.audit.flush.remote())
    return AuditStore(h.journal).query(kind=kind)


def _paged(h) -> collections.Counter:
    return collections.Counter(a for p in _journal(h, "escalation.opened") for a in p["alert_ids"])


def _run(h, rounds: int, per_round: int) -> None:
    corr = h.system.correlator
    sent: list[list[RiskEvent]] = []
    for r in range(rounds):
        batch = _events(f"CK{r}-", per_round)
        sent.append(batch)
        ray.get(corr.on_events.remote(batch), timeout=30)

        def waiting(n: int = per_round) -> bool:
            return ray.get(corr.figures.remote(), timeout=10)["groups_waiting"] >= n

        old = kill_when(corr, waiting, timeout=30)  # the alerts sit in a pending group
        wait_restarted(corr, old)
    expected = {r["alert_id"] for r in _journal(h, "alert") if r["key"].startswith("CK")} - {
        r["alert_id"] for r in _journal(h, "alert") if r.get("suppressed")
    }
    assert len(expected) == rounds * per_round

    def all_paged() -> bool:
        return expected <= set(_paged(h))

    assert wait_until(all_paged, 60), f"never paged: {sorted(expected - set(_paged(h)))[:5]}"
    paged = _paged(h)
    assert {a: paged[a] for a in expected if paged[a] != 1} == {}  # each exactly once
    for batch in sent:  # a shard retrying its batch after the restart: no second alert
        assert ray.get(corr.on_events.remote(batch), timeout=30) == 0
    assert ray.get(h.system.audit.verify.remote(), timeout=60) == []


def test_correlator_killed_mid_group_pages_every_alert_once(world):
    _run(world, rounds=1, per_round=20)


@pytest.mark.chaos
def test_correlator_killed_mid_group_three_times(world):
    _run(world, rounds=3, per_round=60)
