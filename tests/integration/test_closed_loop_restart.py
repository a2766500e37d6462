"""The Executor's process is killed between an order and its fill; Ray restarts it; it rebuilds
its state from the journal, asks the gateway about the open order and finishes the action —
without a second order. On the same system (open policy, emergency policy on): an account that
stays above the emergency line is liquidated without waiting for a person."""

from __future__ import annotations

import os
import signal

import pytest
import ray

from infra.audit import AuditStore
from infra.specs import load_contract_table
from tests.integration.harness import WATCHED_ORDERS, account_at_risk, start_harness
from tests.zmq_util import wait_until

RB, RB_PRICE = "rb2601", 3000.0


@pytest.fixture(scope="module")
def loop(ray_local, tmp_path_factory):
    """One system for both tests (a system costs seconds to start), each on its own account
    (K1, EM1). The restart test runs first (file order): it counts every order the gateway saw
    and every proposal state the Executor holds, which the emergency test's liquidation would
    add to; the emergency test reads only EM1's records."""
    h = start_harness(
        tmp_path_factory.mktemp("restart"),
        {RB: RB_PRICE},
        ["rb"],
        orders=WATCHED_ORDERS,
        approval={"emergency": {"enabled": True, "risk_degree_above": 1.3, "for_s": 1.0}},
    )
    yield h
    h.stop()


def _alive_pid(executor) -> int | None:
    try:
        return ray.get(executor.pid.remote(), timeout=2)
    except Exception:  # restarting: not answering yet
        return None


def test_executor_killed_between_order_and_fill_resumes_without_a_second_order(loop):
    table = load_contract_table()
    loop.send_accounts([account_at_risk("K1", RB, "long", 8, RB_PRICE, 0.5, table)])
    shard = None
    assert wait_until(lambda: any(ray.get(s.has_account.remote("K1")) for s in loop.system.shards))
    shard = next(s for s in loop.system.shards if ray.get(s.has_account.remote("K1")))
    assert wait_until(lambda: ray.get(shard.account.remote("K1"))["positions"][0]["last"] > 0)
    executor = loop.system.executor
    pid = ray.get(executor.propose.remote("K1", "reduce", "ops.a", 0.2))["proposal_id"]

    loop.orders.halt(RB)  # the order reaches the exchange and waits there
    [res] = ray.get(executor.approve.remote([pid], "ops.b"))
    assert res["orders"] == 1

    def accepted() -> bool:
        orders = ray.get(executor.proposal.remote(pid))["orders"]
        return [o["status"] for o in orders] == ["accepted"]

    assert wait_until(accepted, 10)
    [order] = ray.get(executor.proposal.remote(pid))["orders"]
    before = ray.get(executor.pid.remote())
    os.kill(before, signal.SIGKILL)  # the process, not a polite stop
    assert wait_until(lambda: _alive_pid(executor) not in (None, before), 60)

    stats = ray.get(executor.stats.remote())
    assert stats["rebuilt_records"] > 0 and stats["states"] == {"executing": 1}
    rebuilt = ray.get(executor.proposal.remote(pid))
    assert [o["order_ref"] for o in rebuilt["orders"]] == [order["order_ref"]]
    assert wait_until(lambda: ray.get(executor.stats.remote()).get("queries", 0) >= 1, 10)

    loop.orders.resume(RB)
    assert wait_until(lambda: ray.get(executor.proposal.remote(pid))["state"] == "done", 20)
    assert loop.orders.stats["orders"] == 1  # exactly one order reached the exchange
    assert loop.orders.stats["duplicates"] == 0
    view = ray.get(shard.account.remote("K1"))
    assert view["positions"][0]["volume"] == 8 - order["volume"]

    store = AuditStore(loop.journal)

    def trades() -> list[dict]:
        ray.get(loop.system.audit.flush.remote())
        return store.query(kind="trade", key="K1")

    # The shard journals its trades in its own fire-and-forget batches (every flush interval,
    # at most two in flight): "done" can come before the batch with the fill reached the journal.
    assert wait_until(lambda: sum(t["volume"] for t in trades()) == order["volume"], 30)
    assert len(store.query(kind="order", key="K1")) == 1
    assert sum(t["volume"] for t in trades()) == order["volume"]
    assert store.verify() == []


def test_emergency_policy_liquidates_without_approval_and_supersedes(loop):
    table = load_contract_table()
    loop.send_accounts([account_at_risk("EM1", RB, "long", 5, RB_PRICE, 1.5, table)])
    executor = loop.system.executor

    def pending() -> list[dict]:
        return [p for p in ray.get(executor.pending.remote()) if p["account_id"] == "EM1"]

    assert wait_until(lambda: len(pending()) == 1, 20)  # the rule's reduce, waiting for a person
    [waiting] = pending()
    store = AuditStore(loop.journal)

    def closed(pid: str) -> dict | None:
        ray.get(loop.system.audit.flush.remote())
        found = store.query(kind="proposal_closed", ref=pid)
        return found[0] if found else None

    assert wait_until(lambda: closed(waiting["proposal_id"]) is not None, 20)
    assert closed(waiting["proposal_id"])["reason"] == "SUPERSEDED_BY_EMERGENCY"
    [decision] = [d for d in store.query(kind="decision", key="EM1")]
    assert decision["user"] == "EMERGENCY_POLICY" and decision["via"] == "emergency"
    assert wait_until(lambda: closed(decision["ref"]) is not None, 20)
    assert closed(decision["ref"])["state"] == "done"
    shard = next(s for s in loop.system.shards if ray.get(s.has_account.remote("EM1")))
    assert ray.get(shard.account.remote("EM1"))["positions"] == []
