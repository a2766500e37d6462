"""The account dimension on a running system: hierarchy roll-ups and node rules, drill-down
queries, fund-flow anomalies whose history survives a shard restart, and re-sharding."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
import ray

from app.supervisor import start_system, stop_system
from infra.audit import AuditStore
from infra.specs import load_contract_table
from tests.integration.harness import account_at_risk, start_harness
from tests.zmq_util import wait_until

RB = "rb2601"
PRICE = 3000.0


@pytest.fixture(scope="module")
def world(ray_local, tmp_path_factory):
    h = start_harness(
        tmp_path_factory.mktemp("accounts"),
        {RB: PRICE},
        ["rb"],
        rules=[
            {"id": "account.risk_degree.warn", "threshold": 0.8, "rearm": 0.75},
            {"id": "unit.risk_degree.warn", "scope": "unit", "threshold": 0.6, "rearm": 0.55},
        ],
        accounts={"fund_flow": {"k": 2.0, "days": 20, "min_days": 5, "single_limit": 1_000_000}},
    )
    yield h
    h.stop()


def _account(account_id, group_path, risk, table, **extra):
    rec = account_at_risk(account_id, RB, "long", 10, PRICE, risk, table)
    rec["group_path"] = group_path
    rec.update(extra)
    return rec


def _alerts(h, rule_id):
    return [a for a in ray.get(h.system.correlator.alerts.remote(1000)) if a["rule_id"] == rule_id]


def test_rollups_queries_and_unit_rule(world):
    table = load_contract_table()
    world.send_accounts(
        [
            _account("U1A", "grpA/sub1/unit01", 0.5, table),
            _account("U1B", "grpA/sub1/unit01", 0.7, table),
            _account("U2A", "grpA/sub2/unit02", 0.3, table),
            _account("B1", "grpB/sub3/unit05", 0.4, table, strategy="arb"),
        ]
    )
    hierarchy = world.system.hierarchy

    def nodes():
        return {r["node"]: r for r in ray.get(hierarchy.rollups.remote())}

    assert wait_until(lambda: nodes().get("grpA", {}).get("accounts") == 3, 15)
    margin = PRICE * 10 * 10 * 0.07  # 21,000 per account
    n = nodes()
    assert n["grpA"]["equity"] == pytest.approx(margin / 0.5 + margin / 0.7 + margin / 0.3)
    assert n["grpA/sub1/unit01"]["risk_degree"] == pytest.approx(
        2 * margin / (margin / 0.5 + margin / 0.7)
    )
    assert n["strategy:arb"]["accounts"] == 1 and n["grpB"]["level"] == "group"
    assert n["grpA"]["exposure"] == {"rb": 300.0}
    assert ray.get(hierarchy.rollups.remote("unit", "grpA")) and all(
        r["level"] == "unit" for r in ray.get(hierarchy.rollups.remote("unit"))
    )

    # The rb exposure book sees the shards' futures per business unit (10 lots × 10 t each).
    book = world.system.books["rb"]

    def by_unit():
        rows = ray.get(book.exposure.remote())["by_unit"]
        return {u: r["futures"] for u, r in rows.items() if r["futures"]}

    assert wait_until(lambda: by_unit().get("grpA/sub1/unit01") == 200.0, 15), by_unit()
    assert by_unit().get("grpB/sub3/unit05") == 100.0

    parts = ray.get([s.top.remote(2, "risk_degree") for s in world.system.shards])
    top = sorted((r for p in parts for r in p), key=lambda r: -r["risk_degree"])[:2]
    assert [r["account_id"] for r in top] == ["U1B", "U1A"]
    sub2 = [
        r for s in world.system.shards for r in ray.get(s.top.remote(5, "risk_degree", "grpA/sub2"))
    ]
    assert [r["account_id"] for r in sub2] == ["U2A"]

    # −1% on rb: unit01 goes to (2 × 20,790) / (39,000 + 27,000) = 63% > 60%; no account > 80%.
    world.market.set(**{RB: PRICE * 0.99})
    assert wait_until(lambda: _alerts(world, "unit.risk_degree.warn"), 15)
    [alert] = _alerts(world, "unit.risk_degree.warn")
    assert alert["key"] == "grpA/sub1/unit01"
    assert alert["value"] == pytest.approx(2 * 20_790 / 66_000)
    assert not _alerts(world, "account.risk_degree.warn")
    world.market.set(**{RB: PRICE})


def test_fund_flow_history_survives_a_shard_restart(world):
    history = [
        {"day": f"202610{d:02d}", "deposit": 0.0, "withdraw": 10_000.0} for d in range(1, 21)
    ]
    world.send_accounts(
        [
            {
                "type": "snapshot",
                "account_id": "FLOW1",
                "group_path": "grpC/sub9/unit09",
                "pre_balance": 5_000_000,
                "positions": [],
                "flow_history": history,
            }
        ]
    )
    shard = next(
        s
        for s in world.system.shards
        if wait_until(lambda s=s: ray.get(s.has_account.remote("FLOW1")), 1)
    )
    world.send_accounts(
        [{"type": "withdraw", "account_id": "FLOW1", "amount": 15_000, "ts": time.time()}]
    )
    time.sleep(1.0)
    assert not _alerts(world, "account.fund_flow.outflow_above_baseline")

    ray.kill(shard, no_restart=False)  # the process dies; Ray restarts it and it replays the bus
    assert wait_until(lambda: _safe(lambda: ray.get(shard.has_account.remote("FLOW1"))), 30)
    world.send_accounts(
        [{"type": "withdraw", "account_id": "FLOW1", "amount": 6_000, "ts": time.time()}]
    )
    # 15,000 (before the restart) + 6,000 = 21,000 > 2 × 10,000: only if history survived.
    assert wait_until(lambda: _alerts(world, "account.fund_flow.outflow_above_baseline"), 15)
    [alert] = _alerts(world, "account.fund_flow.outflow_above_baseline")
    assert alert["key"] == "FLOW1" and alert["value"] == 21_000

    world.send_accounts(
        [{"type": "deposit", "account_id": "FLOW1", "amount": 2_000_000, "ts": time.time()}]
    )
    assert wait_until(lambda: _alerts(world, "account.fund_flow.single_transfer_above_limit"), 15)


def test_adding_shards_rebuilds_state_without_losing_an_event(world):
    table = load_contract_table()
    world.send_accounts(
        [
            _account(f"R{i:03d}", f"grpR/sub1/unit{i % 3:02d}", 0.2 + i * 0.005, table)
            for i in range(60)
        ]
    )
    world.send_accounts(
        [{"type": "deposit", "account_id": "R007", "amount": 1234.5, "ts": time.time()}]
    )

    def views(shards):
        out = {}
        for s in shards:
            for row in ray.get(s.top.remote(10_000, "equity")):
                out[row["account_id"]] = round(row["equity"], 2)
        return out

    assert wait_until(lambda: sum(k.startswith("R") for k in views(world.system.shards)) == 60, 15)
    before = views(world.system.shards)
    cfg = dataclasses.replace(
        world.cfg,
        accounts=dataclasses.replace(world.cfg.accounts, shards=3),
        audit=dataclasses.replace(
            world.cfg.audit, path=str(world.journal.with_name("bigger.sqlite"))
        ),
    )
    bigger = start_system(cfg, prefix=f"t{uuid.uuid4().hex[:6]}.")
    try:
        assert wait_until(lambda: views(bigger.shards) == before, 20)
        counts = [ray.get(s.stats.remote())["accounts"] for s in bigger.shards]
        assert sum(counts) == len(before) and all(c > 0 for c in counts)
    finally:
        stop_system(bigger)
    assert AuditStore(world.journal).verify() == []


def _safe(fn):
    try:
        return fn()
    except Exception:
        return False
