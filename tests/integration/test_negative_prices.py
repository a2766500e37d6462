"""A WTI-like crude series through −37.63 over real ZeroMQ into a real MarketFeed, an
AccountShard and the Correlator (local Ray): the non-positive prices reach the book (no tick
dropped), a long and a short account are both marked at them, the long account (deeply
negative equity) is past its line and raises the emergency at once, and the feed raises
`market.nonpositive_price` once for the episode."""

from __future__ import annotations

import math

import pytest
import ray
import zmq

from actors.account_shard import AccountShard, AccountShardSettings
from actors.correlator import Correlator
from actors.market_feed import MarketFeed, MarketFeedSettings
from gateways.accounts.bus import AccountBus
from infra.codec import encode_records
from infra.config import MarketConfig
from tests.integration.harness import ScriptedMarket
from tests.zmq_util import free_tcp_endpoint, wait_until

# AccountBook.apply_settlement marks the book branch (risk degree +inf at equity <= 0).
SERIES = [20.1, 18.27, 10.0, 1.0, 0.0, -10.0, -37.63]  # sc2005 standing in for WTI front month
RULES = [{"id": "account.equity.nonpositive", "metric": "equity", "op": "<=", "threshold": 0.0,
          "rearm": 1000.0, "severity": "emergency"},
         {"id": "account.risk_degree.liquidation", "threshold": 1.0, "rearm": 0.95,
          "severity": "critical"}]  # fmt: skip


def _snapshot(account_id: str, direction: str) -> dict:
    return {"type": "snapshot", "account_id": account_id, "pre_balance": 300_000.0,
            "group_path": "grpA/sub1/unit01",
            "positions": [{"instrument": "sc2005", "direction": direction, "volume": 10,
                           "cost_price": 20.1}]}  # fmt: skip


def test_long_and_short_marked_through_minus_37_63(ray_local):
    ep = {k: free_tcp_endpoint() for k in ("market", "in", "pub", "snap")}
    market = ScriptedMarket(ep["market"], {"sc2005": SERIES[0]})
    bus = AccountBus(ep["in"], ep["pub"], ep["snap"]).start()
    correlator = Correlator.remote()
    shard = AccountShard.remote(AccountShardSettings(0, 1, ep["pub"], ep["snap"], flush_ms=20),
                                rules=RULES, correlator=correlator)  # fmt: skip
    feed = MarketFeed.remote(MarketFeedSettings("crude", ep["market"], 20,
                                                market=MarketConfig(rules=())),
                             subscribers=[(shard, "on_prices", 0.0)],
                             correlator=correlator)  # fmt: skip
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 2000)
    push.connect(ep["in"])
    try:
        push.send(
            encode_records("account_events", [_snapshot("L1", "long"), _snapshot("S1", "short")])
        )
        views = lambda: ray.get(shard.accounts.remote(["L1", "S1"]), timeout=30)  # noqa: E731
        assert wait_until(lambda: len(views()) == 2, timeout=30)
        for price in SERIES[1:]:
            market.set(sc2005=price)
            assert wait_until(
                lambda p=price: (
                    views()["L1"]["positions"][0]["last"] == p
                    and ray.get(feed.prices.remote()).get("sc2005") == p
                ),
                timeout=30,
            ), f"price {price} did not reach the book"
        long_, short = views()["L1"], views()["S1"]
        move = (-37.63 - 20.1) * 10 * 1000  # yuan, 10 lots of 1,000 barrels
        assert long_["equity"] == pytest.approx(300_000.0 + move, abs=0.01)  # −277,300
        assert short["equity"] == pytest.approx(300_000.0 - move, abs=0.01)  # 877,300
        assert long_["equity"] < 0 and math.isinf(long_["risk_degree"]), "past the line"
        feed_stats = ray.get(feed.stats.remote())
        assert not any("bad_price" in k for k in feed_stats), feed_stats

        def rules_fired() -> set[tuple[str, str]]:
            return {(a["rule_id"], a["key"]) for a in ray.get(correlator.alerts.remote(500))}

        assert wait_until(lambda: {("account.equity.nonpositive", "L1"),
                                   ("market.nonpositive_price", "sc2005")} <= rules_fired(),
                          timeout=30), rules_fired()  # fmt: skip
        assert ("account.equity.nonpositive", "S1") not in rules_fired()
        nonpositive = [a for a in ray.get(correlator.alerts.remote(500))
                       if a["rule_id"] == "market.nonpositive_price"]  # fmt: skip
        assert len(nonpositive) == 1, "one alert for the whole episode (0, −10, −37.63)"
    finally:
        push.close()
        for actor in (feed, shard, correlator):
            ray.kill(actor, no_restart=True)
        market.stop()
        bus.stop()
