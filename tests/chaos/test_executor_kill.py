"""kill -9 of the Executor mid-execution (issue 13 item 9): an approval is being carried out —
orders leaving for the exchange, which holds them (a trading halt) — when the process dies, and
Ray retries the approval call on the restarted actor. Exactly once on orders: one order per
(proposal, leg) reached the exchange and the journal, every action finishes after the restart,
and every record each Executor process numbered is in the journal."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import ray

from infra.audit import AuditStore
from infra.specs import load_contract_table
from tests.chaos.kill import kill_when, wait_restarted
from tests.integration.harness import account_at_risk, start_order_loop
from tests.zmq_util import wait_until

RB, RB_PRICE = "rb2601", 3000.0


@pytest.fixture
def loop(ray_local, tmp_path_factory):
    h = start_order_loop(tmp_path_factory.mktemp("chaos_executor"))
    yield h
    h.stop()


def _run(loop, accounts: int, kills: int) -> None:
    table = load_contract_table()
    ids = [f"XK{i:02d}" for i in range(accounts)]
    loop.send_accounts([account_at_risk(a, RB, "long", 8, RB_PRICE, 0.5, table) for a in ids])

    def marked() -> bool:
        views = [v for s in loop.system.shards for v in ray.get(s.accounts.remote(ids)).values()]
        return len(views) == accounts and all(v["positions"][0]["last"] > 0 for v in views)

    assert wait_until(marked, 30)
    executor = loop.system.executor
    proposals = [ray.get(executor.propose.remote(a, "reduce", "ops.a", 0.2))["proposal_id"]
                 for a in ids]  # fmt: skip
    loop.orders.halt(RB)  # orders reach the exchange and wait there
    answers: list = []

    def approve() -> None:
        try:
            answers.append(ray.get(executor.approve.remote(proposals, "ops.b"), timeout=120))
        except Exception as exc:  # the call died with the process (and Ray's retries)
            answers.append(exc)

    approving = threading.Thread(target=approve)
    approving.start()
    for k in range(kills):  # mid-execution: the exchange has some of the orders, not all
        old = kill_when(executor, lambda k=k: loop.orders.stats["orders"] >= k + 1, timeout=60)
        wait_restarted(executor, old)
    approving.join(timeout=150)
    assert not approving.is_alive()

    def executing_or_done() -> bool:
        states = [ray.get(executor.proposal.remote(p))["state"] for p in proposals]
        return all(s in ("executing", "done") for s in states)

    if not executing_or_done():  # the approval died before it was journaled: ask again
        ray.get(executor.approve.remote(proposals, "ops.b"), timeout=60)
    assert wait_until(executing_or_done, 30)
    loop.orders.resume(RB)

    def done() -> bool:
        return all(ray.get(executor.proposal.remote(p))["state"] == "done" for p in proposals)

    assert wait_until(done, 60)
    legs = [o for p in proposals for o in ray.get(executor.proposal.remote(p))["orders"]]
    assert len(legs) == accounts  # one leg each (one position each)
    assert loop.orders.stats["orders"] == len(legs)  # exactly one order per leg reached it
    assert loop.orders.stats["duplicates"] == 0
    ray.get(loop.system.audit.flush.remote())
    store = AuditStore(loop.journal)
    journaled = Counter(r["ref"] for r in store.query(kind="order"))
    assert journaled == Counter(o["order_ref"] for o in legs)  # each order journaled once
    assert store.verify() == []


def test_executor_killed_mid_execution_sends_each_order_once(loop):
    _run(loop, accounts=4, kills=1)


@pytest.mark.chaos
def test_executor_killed_twice_mid_execution(loop):
    _run(loop, accounts=10, kills=2)
