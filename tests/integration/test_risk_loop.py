"""The whole loop on a real local Ray: ticks over ZeroMQ → shards → correlator → notifier and
executor → order gateway → fills back through the account bus → journal."""

from __future__ import annotations

import time

import pytest
import ray

from infra.audit import AuditStore
from infra.specs import load_contract_table
from tests.integration.harness import account_at_risk, start_harness
from tests.zmq_util import wait_until

RB, CU = "rb2601", "cu2601"
RB_PRICE, CU_PRICE = 3000.0, 80000.0
SHOCK = -0.03


@pytest.fixture(scope="module")
def loop(ray_local, tmp_path_factory):
    h = start_harness(tmp_path_factory.mktemp("loop"), {RB: RB_PRICE, CU: CU_PRICE}, ["rb", "cu"])
    yield h
    h.stop()


def expected_risk_after_shock(risk0: float, direction: str, table) -> float:
    """By hand: cost = old price, so position profit = sign × Δprice × lots × multiplier."""
    spec = table.spec(RB)
    lots, new = 10, RB_PRICE * (1 + SHOCK)
    margin0 = RB_PRICE * lots * spec.multiplier * spec.margin_rate
    equity = (
        margin0 / risk0
        + (1 if direction == "long" else -1) * (new - RB_PRICE) * lots * spec.multiplier
    )
    return new * lots * spec.multiplier * spec.margin_rate / equity


def test_shock_alerts_each_crossing_account_once_notifies_and_journals(loop):
    table = load_contract_table()
    population = {  # account: (instrument, direction, risk degree before the shock)
        "L50": (RB, "long", 0.50),
        "L70": (RB, "long", 0.70),
        "L76": (RB, "long", 0.76),
        "L78": (RB, "long", 0.78),
        "S78": (RB, "short", 0.78),
        "C79": (CU, "long", 0.79),
    }
    loop.send_accounts(
        [
            account_at_risk(a, inst, d, 10, RB_PRICE if inst == RB else CU_PRICE, r, table)
            for a, (inst, d, r) in population.items()
        ]
    )
    shards = loop.system.shards
    assert wait_until(lambda: sum(ray.get(s.stats.remote())["accounts"] for s in shards) == 6, 15)
    time.sleep(0.5)
    assert ray.get(loop.system.correlator.stats.remote()).get("alerts", 0) == 0  # all below 80%

    expected = {
        a
        for a, (inst, d, r) in population.items()
        if inst == RB and expected_risk_after_shock(r, d, table) > 0.8
    }
    assert expected == {"L70", "L76", "L78"}
    loop.market.set(**{RB: RB_PRICE * (1 + SHOCK)})

    corr = loop.system.correlator
    assert wait_until(lambda: ray.get(corr.stats.remote()).get("alerts", 0) >= 3, 15)
    time.sleep(1.0)  # a few more price updates: hysteresis must keep it at one alert each
    alerts = ray.get(corr.alerts.remote())
    assert sorted(a["key"] for a in alerts) == sorted(expected)
    for a in alerts:
        assert a["value"] == pytest.approx(
            expected_risk_after_shock(population[a["key"]][2], "long", table)
        )

    # the groups wait out group_wait_s in the Correlator: the Notifier is drained once it has them
    assert ray.get(corr.drain.remote(60))
    assert ray.get(loop.system.notifier.drain.remote(60))
    wecom = loop.sink.messages("wecom")
    sms = loop.sink.messages("twilio_sms")
    for account in expected:
        assert sum(account in m["body"] for m in wecom) == 1
        assert sum(account in m["body"] for m in sms) == 1
    assert len(wecom) == len(sms) == 3

    store = AuditStore(loop.journal)

    def journaled() -> bool:
        ray.get(loop.system.audit.flush.remote())
        return (
            len(store.query(kind="proposal")) == 3
            and len(store.query(kind="notification.delivered")) == 6
        )

    assert wait_until(journaled, 10)
    assert sorted(r["key"] for r in store.query(kind="alert")) == sorted(expected)
    assert store.verify() == []


def test_approved_reduce_yields_order_and_fill_that_lowers_risk(loop):
    executor = loop.system.executor
    assert wait_until(
        lambda: any(p["account_id"] == "L70" for p in ray.get(executor.pending.remote())), 10
    )
    proposal = next(p for p in ray.get(executor.pending.remote()) if p["account_id"] == "L70")
    shard = next(s for s in loop.system.shards if ray.get(s.has_account.remote("L70")))
    before = ray.get(shard.account.remote("L70"))
    assert before["risk_degree"] > 0.8

    [result] = ray.get(executor.approve.remote([proposal["proposal_id"]], "risk.zhang"))
    assert result["orders"] >= 1, result
    assert wait_until(
        lambda: (
            ray.get(executor.proposal.remote(proposal["proposal_id"]))["state"]
            in ("done", "failed")
        ),
        15,
    )
    done = ray.get(executor.proposal.remote(proposal["proposal_id"]))
    assert done["state"] == "done", done
    after = ray.get(shard.account.remote("L70"))
    assert after["risk_degree"] < before["risk_degree"]
    assert after["risk_degree"] <= proposal["target_risk_degree"] + 1e-9
    rb = next(p for p in after["positions"] if p["instrument"] == RB)
    assert rb["volume"] < 10

    store = AuditStore(loop.journal)
    wanted = {
        "alert",
        "proposal",
        "decision",
        "plan",
        "order",
        "order_report",
        "trade",
        "proposal_closed",
    }

    def journaled() -> bool:
        ray.get(loop.system.audit.flush.remote())
        return wanted <= {r["kind"] for r in store.query(key="L70")}

    assert wait_until(journaled, 10), {r["kind"] for r in store.query(key="L70")}
    assert store.verify() == []

    # Approving again is refused (not pending) and journaled; no second order goes out.
    [again] = ray.get(executor.approve.remote([proposal["proposal_id"]], "risk.zhang"))
    assert again["refused"].startswith("NOT_PENDING")
