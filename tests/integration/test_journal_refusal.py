"""No order without its journal record (issue 14 item 5): while the journal cannot commit (here a
real second SQLite connection holds the file's write lock, as a stuck disk or a lost volume
would), an approval answers JOURNAL_UNAVAILABLE, nothing reaches the order gateway, the
Executor holds what follows the record and says so (`journal_held`, the supervisor's health
checks `journal_held` / `journal_unreachable`); once the journal commits again the held
decision is journaled, then the plan and its order, exactly once."""

from __future__ import annotations

import sqlite3
import time

import pytest
import ray

from app.system_health import Health
from infra.audit import AuditStore
from infra.specs import load_contract_table
from tests.integration.harness import account_at_risk, start_order_loop
from tests.zmq_util import wait_until

RB, RB_PRICE = "rb2601", 3000.0


@pytest.fixture
def loop(ray_local, tmp_path_factory):
    # A commit gives up on the test's lock after 1 s instead of 5: the same refusals, sooner.
    h = start_order_loop(tmp_path_factory.mktemp("refusal"), audit={"busy_timeout_s": 1.0})
    yield h
    h.stop()


def test_an_approval_waits_for_its_journal_record_and_resumes_once(loop):
    table = load_contract_table()
    loop.send_accounts([account_at_risk("J1", RB, "long", 8, RB_PRICE, 0.5, table)])
    shards = loop.system.shards
    assert wait_until(lambda: any(ray.get(s.has_account.remote("J1")) for s in shards), 30)
    shard = next(s for s in shards if ray.get(s.has_account.remote("J1")))
    assert wait_until(lambda: ray.get(shard.account.remote("J1"))["positions"][0]["last"] > 0)
    executor = loop.system.executor
    pid = ray.get(executor.propose.remote("J1", "reduce", "ops.a", 0.2))["proposal_id"]
    ray.get(loop.system.audit.flush.remote())

    lock = sqlite3.connect(str(loop.journal), timeout=0)
    lock.execute("BEGIN EXCLUSIVE")  # the journal's writer now fails every commit
    try:
        reply = ray.get(executor.simple_request.remote("approve", [pid], "ops.b"), timeout=120)
        assert reply["code"] == "JOURNAL_UNAVAILABLE" and reply["journal"] == "unavailable"
        stats = ray.get(executor.stats.remote())
        assert stats["journal_held"] >= 1 and stats["journal_errors"] >= 1, stats
        # It asks again (every RETRY_S) and still sends nothing.
        assert wait_until(
            lambda: ray.get(executor.stats.remote())["journal_errors"] >= 2, 60, interval=0.5
        )
        assert loop.orders.stats["orders"] == 0
        reported: list[tuple[str, dict]] = []
        health = Health(lambda kind, payload: reported.append((kind, payload)))
        audit = loop.system.audit

        def write_errors() -> int:
            return ray.get(audit.stats.remote())["write_errors"]

        health.check(loop.cfg, loop.system, started=time.time())
        before = write_errors()
        assert wait_until(lambda: write_errors() > before, 30, interval=0.5)
        health.check(loop.cfg, loop.system, started=time.time())  # a commit failed meanwhile
        problems = {p["problem"] for _, p in reported if p["state"] == "raised"}
        assert "journal_held" in problems, health.lines()
        assert "journal_unreachable" in problems, health.lines()
        assert loop.orders.stats["orders"] == 0
    finally:
        lock.rollback()
        lock.close()

    def done() -> bool:
        return ray.get(executor.proposal.remote(pid))["state"] == "done"

    assert wait_until(done, 60, interval=0.25)
    assert loop.orders.stats["orders"] == 1 and loop.orders.stats["duplicates"] == 0
    assert ray.get(executor.stats.remote())["journal_held"] == 0
    ray.get(loop.system.audit.flush.remote())
    store = AuditStore(loop.journal)
    try:
        [decision] = store.query(kind="decision", key="J1")
        [order] = store.query(kind="order", key="J1")
        assert decision["seq"] < order["seq"]  # the decision first, then the order: in order
        assert store.verify() == []  # no record twice, none lost
    finally:
        store.close()
