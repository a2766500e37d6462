"""A restarted AccountShard keeps what its adaptive rules learned (issue 18 item 4): the
baselines are journaled (typed `adaptive.state` records in a real SQLite journal, AuditLog on
a local Ray) and a recovering shard takes them back — even when the account bus is a new one
(the whole system restarted, the bus's in-memory log gone), so the only way to know an
account's usual Monday withdrawal is the journal. Without it the same 300k is not judged.
A restarted MarketFeed likewise keeps each contract's learned volatility (vol_scaled_move)."""

from __future__ import annotations

import pytest
import ray
import zmq

from actors.account_shard import AccountShard, AccountShardSettings
from actors.audit_log import AuditLog, AuditLogSettings
from actors.correlator import Correlator
from actors.market_feed import MarketFeed, MarketFeedSettings
from gateways.accounts.bus import AccountBus
from infra.codec import encode_records
from rules.engine.spec import RuleSet, RuleSpec
from rules.journal_records import AlertRecord
from tests.integration.market_util import SteerableMarket
from tests.zmq_util import free_tcp_endpoint, wait_until

MONDAY = 1_762_740_000.0  # 2025-11-10 10:00 Beijing time
WEEK = 7 * 86400.0
RULE = RuleSpec(id="account.withdraw_unusual", kind="fundflow_anomaly", metric="transfer",
                threshold=4.0, params={"direction": "withdraw", "depth": 12, "min_history": 4,
                                       "min_spread": 0.25})  # fmt: skip


def bundle() -> dict:
    return {**RuleSet((RULE,)).to_bundle(), "context": {"recover": True}}


def send(bus: AccountBus, records: list[dict]) -> None:
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(bus.inbound_endpoint)
    sock.send(encode_records("account_events", records))
    sock.close()


def snapshot() -> dict:
    return {"type": "snapshot", "account_id": "A1", "pre_balance": 5_000_000.0,
            "group_path": "grpA/sub1/unit01", "positions": []}  # fmt: skip


def start(bus: AccountBus, audit, correlator):
    settings = AccountShardSettings(0, 1, bus.pub_endpoint, bus.snapshot_endpoint, flush_ms=20)
    return AccountShard.remote(settings, rules=bundle(), audit=audit, correlator=correlator)


def stats(shard) -> dict:
    return ray.get(shard.stats.remote(), timeout=30)


def unusual(correlator) -> list[dict]:
    return [a for a in ray.get(correlator.alerts.remote(500), timeout=30)
            if a["rule_id"] == RULE.id]  # fmt: skip


@pytest.mark.parametrize("journaled", [True, False])
def test_a_restarted_shard_keeps_the_accounts_baseline(ray_local, tmp_path, journaled):
    audit = AuditLog.remote(AuditLogSettings(str(tmp_path / "journal.sqlite"), 20))
    correlator = Correlator.remote(audit=audit)
    endpoints = [free_tcp_endpoint() for _ in range(3)]
    with AccountBus(*endpoints) as bus:
        shard = start(bus, audit, correlator)
        try:
            send(bus, [snapshot()] + [
                {"type": "withdraw", "account_id": "A1", "amount": 20_000.0 + 500 * w,
                 "ts": MONDAY + w * WEEK} for w in range(8)
            ])  # fmt: skip
            assert wait_until(lambda: stats(shard).get("events_withdraw") == 8, timeout=30)
            if journaled:  # what the 60 s cadence does, now
                assert ray.get(shard.save_adaptive.remote(), timeout=30) == 1
                assert wait_until(lambda: ray.get(audit.query.remote(kind="adaptive.state")),
                                  timeout=30)  # fmt: skip
        finally:
            ray.kill(shard, no_restart=True)
    endpoints = [free_tcp_endpoint() for _ in range(3)]
    with AccountBus(*endpoints) as bus:  # a new bus: nothing to replay but what is sent now
        shard = start(bus, audit, correlator)
        try:
            send(bus, [snapshot(), {"type": "withdraw", "account_id": "A1", "amount": 300_000.0,
                                    "ts": MONDAY + 8 * WEEK}])  # fmt: skip
            assert wait_until(lambda: stats(shard).get("events_withdraw") == 1, timeout=30)
            if not journaled:  # no baseline: four past Mondays are needed before judging
                assert stats(shard).get("fund_flow_events", 0) == 0  # judged when applied
                return
            assert stats(shard).get("adaptive_restored") == 1
            assert wait_until(lambda: unusual(correlator), timeout=30)
            alert = unusual(correlator)[0]
            ev = alert["attributes"]["evidence"]
            assert ev["history"] == 8 and 20_000 < ev["baseline"] < 24_000 and ev["score"] > 4
            assert "Monday withdrawals" in alert["title"]
            assert wait_until(lambda: ray.get(audit.query.remote(kind="alert")), timeout=30)
            typed = AlertRecord.from_record(ray.get(audit.query.remote(kind="alert"))[-1])
            assert typed.evidence["history"] == 8  # the typed record's own field (v2)
        finally:
            for actor in (shard, correlator, audit):
                ray.kill(actor, no_restart=True)


VOL_RULE = RuleSpec(id="market.vol_move", kind="vol_scaled_move", metric="vol_scaled_move",
                    scope="contract", threshold=6.0, rearm=2.0,
                    params={"bar_s": 1, "window_bars": 1, "halflife_bars": 30.0,
                            "min_bars": 5})  # fmt: skip


def market_bundle() -> dict:
    return {**RuleSet((VOL_RULE,)).to_bundle(), "context": {"recover": True}}


def learned(feed) -> tuple[int, int]:
    """(bars folded into rb2601's baseline, closes in its ring) from the feed's snapshot."""
    state = ray.get(feed.adaptive_snapshot.remote(), timeout=30)["market_rules"]
    st = state[VOL_RULE.id]["state"]
    if "rb2601" not in st["names"]:
        return 0, 0
    i = st["names"].index("rb2601")
    return int(st["bars"][i]), int(st["count"][i])


def test_a_restarted_feed_keeps_each_contracts_volatility_baseline(ray_local, tmp_path):
    audit = AuditLog.remote(AuditLogSettings(str(tmp_path / "journal.sqlite"), 20))
    endpoint = free_tcp_endpoint()
    market = SteerableMarket(endpoint, {"rb2601": 3000.0, "cu2601": 80000.0})
    settings = MarketFeedSettings("m1", endpoint, 20)
    feed = MarketFeed.remote(settings, rules=market_bundle(), audit=audit)
    try:
        assert wait_until(lambda: learned(feed)[0] >= 4, 30)  # one-second bars folding in
        assert ray.get(feed.save_adaptive.remote(), timeout=30) == 1
        saved = learned(feed)
    finally:
        ray.kill(feed, no_restart=True)
    again = MarketFeed.remote(settings, rules=market_bundle(), audit=audit)
    try:
        assert ray.get(again.stats.remote(), timeout=30)["adaptive_restored"] == 1
        # The contract takes its baseline back when it first ticks: it starts at what it had.
        assert wait_until(lambda: learned(again)[0] > 0, 30)
        assert learned(again)[0] >= saved[0] and learned(again)[1] >= saved[1]
        fresh = MarketFeed.remote(MarketFeedSettings("m2", endpoint, 20), rules=market_bundle(),
                                  audit=audit)  # fmt: skip
        try:  # another feed (nothing journaled under its name) learns from zero
            assert wait_until(lambda: learned(fresh)[0] >= 1, 30)
            assert ray.get(fresh.stats.remote(), timeout=30).get("adaptive_restored", 0) == 0
            assert learned(fresh)[0] < learned(again)[0]
        finally:
            ray.kill(fresh, no_restart=True)
    finally:
        for actor in (again, audit):
            ray.kill(actor, no_restart=True)
        market.stop()
