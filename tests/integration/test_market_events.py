"""Market events on a real local Ray: MarketFeed actors on real ZeroMQ, a real Correlator.

The session clock of the feeds is pinned (`market.session_clock_start`) so the tests mean the
same at any hour: a Wednesday morning is in session, a Saturday or a holiday is not.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ray

from actors.correlator import Correlator
from actors.market_feed import MarketFeed, MarketFeedSettings
from infra import config
from rules.model import PriceUpdate
from tests.integration.market_util import SteerableMarket
from tests.zmq_util import free_tcp_endpoint, wait_until

WEDNESDAY = "2026-01-07T10:00:00+08:00"
SATURDAY = "2026-01-10T10:00:00+08:00"
NATIONAL_DAY = "2026-10-01T10:00:00+08:00"  # a Thursday, a holiday in examples/holidays.json
HOLIDAYS = str(Path(__file__).resolve().parents[2] / "examples" / "holidays.json")
RULES = [
    {"id": "jump", "kind": "jump", "threshold": 6.0, "rearm": 3.0},
    {"id": "near", "kind": "near_limit", "threshold": 0.01, "rearm": 0.015},
    {"id": "locked", "kind": "limit_locked", "threshold": 0.5, "rearm": 0.5,
     "severity": "critical"},
    {"id": "stale", "kind": "stale", "threshold": 2.0, "rearm": 0.5},
    {"id": "silent", "kind": "feed_silent", "threshold": 1.0, "rearm": 0.5,
     "severity": "critical"},
]  # fmt: skip


def market_cfg(**overrides: Any) -> config.MarketConfig:
    market = {
        "check_ms": 100,
        "session_clock_start": WEDNESDAY,
        "takeover_s": 0.6,
        "stats": {"jump_window_s": 2, "jump_min_returns": 5},
        "rules": RULES,
        **overrides,
    }
    return config.from_dict({"market": market}, source="<test>").market


@ray.remote(num_cpus=0)
class Recorder:
    """A subscriber that keeps every PriceUpdate's feed and prices."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, dict[str, float]]] = []

    def on_prices(self, update: PriceUpdate) -> None:
        self.updates.append(
            (update.feed, dict(zip(update.instruments, update.last.tolist(), strict=True)))
        )

    def since(self, start: int) -> list[tuple[str, dict[str, float]]]:
        return self.updates[start:]

    def count(self) -> int:
        return len(self.updates)


def alerts(corr: Any) -> list[dict[str, Any]]:
    return ray.get(corr.alerts.remote(1000))


def keys(corr: Any) -> set[tuple[str, str]]:
    return {(a["rule_id"], a["key"]) for a in alerts(corr)}


def test_jump_near_limit_and_locked_limit_alerts(ray_local):
    endpoint = free_tcp_endpoint()
    market = SteerableMarket(endpoint, {"rb2601": 3000.0, "cu2601": 80000.0})
    corr = Correlator.remote()
    feed = MarketFeed.remote(
        MarketFeedSettings("m1", endpoint, 20, market=market_cfg()), correlator=corr
    )
    try:
        # The jump reference needs jump_window_s of history first.
        assert wait_until(lambda: ray.get(feed.stats.remote()).get("slices", 0) > 70, 10)
        market.set(rb2601=2910.0)  # -3% at once
        assert wait_until(lambda: ("jump", "rb2601") in keys(corr), 10)
        market.set(rb2601=2850.0)  # the lower limit (5% under 3000), bid = ask = limit
        assert wait_until(lambda: {("near", "rb2601"), ("locked", "rb2601")} <= keys(corr), 10)
        got = {a["rule_id"]: a for a in alerts(corr)}
        assert set(got) == {"jump", "near", "locked"}  # nothing about cu2601
        assert got["jump"]["dimension"] == "market" and got["jump"]["attributes"]["feed"] == "m1"
        assert got["jump"]["attributes"]["move"] < -0.02
        assert got["locked"]["attributes"]["side"] == -1
        assert got["locked"]["attributes"]["lower_limit"] == 2850.0
        state = ray.get(feed.market.remote(["rb2601"]))["rb2601"]
        assert state["locked"] and state["limit_distance"] == 0.0
        # The prices can straddle a minute boundary (ticks carry wall-clock stamps): the bars of
        # the last minutes together, completed and open, hold the 3,000 start and the limit.
        bars = ray.get(feed.bars.remote("rb2601", 5))
        assert min(b["low"] for b in bars) == 2850.0 and max(b["high"] for b in bars) == 3000.0
        assert state["bar"]["close"] == 2850.0 and state["bar"]["low"] == 2850.0  # open bar
        assert ray.get(corr.stats.remote())["alerts"] == 3
    finally:
        ray.kill(feed)
        market.stop()


def test_a_silent_contract_is_stale_and_a_silent_feed_is_one_alert(ray_local):
    endpoint = free_tcp_endpoint()
    names = {"rb2601": 3000.0, "cu2601": 80000.0, "i2601": 800.0, "IF2601": 4000.0}
    market = SteerableMarket(endpoint, names)
    corr = Correlator.remote()
    feed = MarketFeed.remote(
        MarketFeedSettings("m2", endpoint, 20, market=market_cfg()), correlator=corr
    )
    try:
        assert wait_until(lambda: ray.get(feed.stats.remote()).get("contracts") == 4, 10)
        market.mute("cu2601")
        assert wait_until(lambda: ("stale", "cu2601") in keys(corr), 10)
        assert keys(corr) == {("stale", "cu2601")}
        market.paused.set()
        assert wait_until(lambda: ("silent", "m2") in keys(corr), 10)
        time.sleep(2.5)  # past the stale threshold: the contracts must not alert one by one
        assert keys(corr) == {("stale", "cu2601"), ("silent", "m2")}
        [silent] = [a for a in alerts(corr) if a["rule_id"] == "silent"]
        assert silent["attributes"]["contracts"] == 4 and silent["severity"] == "critical"
    finally:
        ray.kill(feed)
        market.stop()


def test_no_stale_alert_outside_the_session(ray_local):
    feeds, markets = [], []
    corr = Correlator.remote()
    try:
        for name, clock in (("weekend", SATURDAY), ("holiday", NATIONAL_DAY)):
            endpoint = free_tcp_endpoint()
            markets.append(SteerableMarket(endpoint, {"rb2601": 3000.0, "IF2601": 4000.0}))
            cfg = market_cfg(session_clock_start=clock, holidays_file=HOLIDAYS)
            feeds.append(
                MarketFeed.remote(
                    MarketFeedSettings(name, endpoint, 20, market=cfg), correlator=corr
                )
            )
        for feed in feeds:
            assert wait_until(lambda f=feed: ray.get(f.stats.remote()).get("ticks", 0) > 0, 10)
        for market in markets:
            market.paused.set()
        checks = [ray.get(f.stats.remote()).get("checks", 0) for f in feeds]
        assert wait_until(
            lambda: all(
                ray.get(f.stats.remote())["checks"] > c + 25
                for f, c in zip(feeds, checks, strict=True)
            ),
            15,
        )  # 2.5 s of checks while silent, out of session
        assert alerts(corr) == []
    finally:
        for feed in feeds:
            ray.kill(feed)
        for market in markets:
            market.stop()


def test_backup_takes_over_from_a_stale_primary_and_hands_back(ray_local):
    ep_primary, ep_backup = free_tcp_endpoint(), free_tcp_endpoint()
    primary_market = SteerableMarket(ep_primary, {"rb2601": 3000.0, "cu2601": 80000.0})
    backup_market = SteerableMarket(ep_backup, {"rb2601": 3001.0, "cu2601": 80010.0})
    corr = Correlator.remote()
    rec = Recorder.remote()
    subs = [(rec, "on_prices", 0.0)]
    cfg = market_cfg()
    primary = MarketFeed.remote(
        MarketFeedSettings("primary", ep_primary, 20, market=cfg), subscribers=subs, correlator=corr
    )
    backup = MarketFeed.remote(
        MarketFeedSettings("backup", ep_backup, 20, role="backup", market=cfg),
        subscribers=subs, correlator=corr, primary=primary,
    )  # fmt: skip
    try:
        assert wait_until(lambda: ray.get(backup.stats.remote()).get("contracts") == 2, 10)
        # A primary slow to start (a loaded machine) can look stale to the backup for a moment:
        # the backup then takes over and hands back. The steady state is what is asserted.
        assert wait_until(lambda: ray.get(backup.stats.remote())["owned"] == 0, 10)
        start = ray.get(rec.count.remote())
        # 40 pushes: the backup's one push in flight may land a few after the hand-back
        assert wait_until(lambda: ray.get(rec.count.remote()) > start + 40, 10)
        first = [feed for feed, _ in ray.get(rec.since.remote(start))]
        assert first.count("backup") <= 1 and set(first[-20:]) == {"primary"}, first

        def takeovers() -> list[list[str]]:  # the events reach the correlator in its next batch
            found = [a for a in alerts(corr) if a["rule_id"] == "market.feed_takeover"]
            return [a["attributes"]["instruments"] for a in found]

        # A takeover at start (the slow primary above) was raised and sent 20 pushes ago:
        # the ones this test makes are those from here on.
        n0 = len(takeovers())
        primary_market.mute("cu2601")  # the primary loses one contract: only it moves
        assert wait_until(lambda: ray.get(backup.stats.remote())["owned"] == 1, 10)
        mark = ray.get(rec.count.remote())
        assert wait_until(lambda: ray.get(rec.count.remote()) > mark + 20, 10)
        seen = {(feed, name) for feed, prices in ray.get(rec.since.remote(mark)) for name in prices}
        assert ("backup", "cu2601") in seen and ("backup", "rb2601") not in seen

        primary_market.paused.set()  # the whole primary goes quiet
        assert wait_until(lambda: ray.get(backup.stats.remote())["owned"] == 2, 10)

        assert wait_until(lambda: len(takeovers()) == n0 + 2, 10), takeovers()
        assert takeovers()[n0:] == [["cu2601"], ["rb2601"]]

        primary_market.muted.clear()
        primary_market.paused.clear()  # back: the backup hands both contracts back
        assert wait_until(lambda: ray.get(backup.stats.remote())["owned"] == 0, 10)
        mark = ray.get(rec.count.remote())
        assert wait_until(lambda: ray.get(rec.count.remote()) > mark + 40, 10)
        after = [feed for feed, _ in ray.get(rec.since.remote(mark))]
        # A feed has at most one push in flight per subscriber: the backup's last one may land
        # after it handed back, none after that.
        assert after.count("backup") <= 1 and set(after[-20:]) == {"primary"}, after
        assert ray.get(backup.stats.remote())["ticks"] > 0  # it kept folding every tick
    finally:
        for actor in (primary, backup):
            ray.kill(actor)
        primary_market.stop()
        backup_market.stop()
