"""Every rule kind on a running system (real Ray, ZeroMQ, account bus, SQLite journal): rules
loaded from a rules file through `rules_files`, evaluated where their data lives — threshold,
session-restricted and period-over-period rules in the shards, behaviour rules on the order
stream, node rules in the Hierarchy, volatility in the MarketFeed — and a composite across the
account and market dimensions in the Correlator."""

from __future__ import annotations

import threading
import time

import pytest
import ray

from infra.specs import load_contract_table
from tests.integration.harness import account_at_risk, start_harness
from tests.zmq_util import wait_until

RB, HC, CU = "rb2601", "hc2601", "cu2601"
PRICES = {RB: 3000.0, HC: 3500.0, CU: 80000.0}

RULES = """
[hygiene]
group_wait_s = 0.1

[[rules]]
id = "t.warn"
threshold = 0.8
rearm = 0.75

[[rules]]
id = "t.close"
kind = "session"
sessions = ["close"]
threshold = 0.6
rearm = 0.55
severity = "info"

[[rules]]
id = "t.night"
kind = "session"
sessions = ["night"]
threshold = 0.5
rearm = 0.45
severity = "info"

[[rules]]
id = "t.drop"
kind = "change"
metric = "equity"
window_s = 2
compare = "previous"
mode = "pct"
op = "<"
threshold = -0.05
rearm = -0.02
severity = "critical"

[[rules]]
id = "t.orders"
kind = "behaviour"
metric = "orders"
window_s = 2
threshold = 5
rearm = 2

[[rules]]
id = "t.cancels"
kind = "behaviour"
metric = "cancel_ratio"
window_s = 5
min_orders = 4
threshold = 0.7
rearm = 0.5

[[rules]]
id = "t.self"
kind = "behaviour"
metric = "self_trades"
window_s = 60
threshold = 0.5

[[rules]]
id = "t.unit"
scope = "unit"
threshold = 0.7
rearm = 0.65

[[rules]]
id = "t.vol"
kind = "volatility"
window_s = 60
threshold = 5.0
rearm = 1.0
products = ["cu"]

[[rules]]
id = "t.combo"
kind = "composite"
join = "holds"
within_s = 60
severity = "critical"
when = [["dimension=account", "rule=t.warn"], ["dimension=market", "rule=t.vol"]]
"""


@pytest.fixture(scope="module")
def world(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rules_kinds")
    rules = tmp / "rules.toml"
    rules.write_text(RULES)
    # A Monday at 14:56:30 Beijing time: the day session's last minutes ("day", "close").
    h = start_harness(tmp, PRICES, ["rb"], rules_files=[str(rules)],
                      market={"session_clock_start": "2026-01-05T14:56:30+08:00"})  # fmt: skip
    yield h
    h.stop()


def alerts(h, rule_id: str) -> list[dict]:
    return [a for a in ray.get(h.system.correlator.alerts.remote(5000)) if a["rule_id"] == rule_id]


def keys(h, rule_id: str) -> set[str]:
    return {a["key"] for a in alerts(h, rule_id)}


def acct(
    account_id: str, instrument: str, risk: float, group: str = "grpA/sub1/unit01", lots: float = 10
):
    rec = account_at_risk(
        account_id, instrument, "long", lots, PRICES[instrument], risk, load_contract_table()
    )
    rec["group_path"] = group
    return rec


def test_threshold_and_session_rules(world):
    world.send_accounts([acct("S1", RB, 0.65), acct("S2", RB, 0.85), acct("S3", RB, 0.3)])
    assert wait_until(lambda: {"S1", "S2"} <= keys(world, "t.close"), 15)
    assert wait_until(lambda: "S2" in keys(world, "t.warn"), 5)
    time.sleep(0.5)  # more marks: a rule outside its session stays silent
    assert "S3" not in keys(world, "t.close")
    assert not keys(world, "t.night") & {"S1", "S2", "S3"}
    assert "S1" not in keys(world, "t.warn")
    [s1] = [a for a in alerts(world, "t.close") if a["key"] == "S1"]
    assert s1["value"] == pytest.approx(0.65) and s1["severity"] == "info"


def test_change_rule_against_previous_window(world):
    world.send_accounts([acct("D1", HC, 0.3)])
    time.sleep(4.5)  # two 2-second windows close with D1's equity as their baseline
    assert "D1" not in keys(world, "t.drop")
    world.market.set(**{HC: PRICES[HC] * 0.98})  # -2% on a position worth 0.3 / 0.07 x equity
    assert wait_until(lambda: "D1" in keys(world, "t.drop"), 10)
    [a] = [a for a in alerts(world, "t.drop") if a["key"] == "D1"]
    assert a["value"] == pytest.approx(-0.02 * 0.3 / 0.07, rel=0.02)
    assert a["severity"] == "critical"


def test_behaviour_rules_on_the_order_stream(world):
    world.send_accounts([acct("B1", RB, 0.2), acct("B2", RB, 0.2), acct("B3", RB, 0.2)])
    assert wait_until(
        lambda: sum(ray.get(s.stats.remote())["accounts"] for s in world.system.shards) >= 6, 10
    )
    now = time.time()
    orders = [{"type": "order", "account_id": "B1", "order_ref": f"o{i}", "instrument": RB,
               "direction": "long", "offset": "open", "volume": 1, "price": 3000.0, "ts": now}
              for i in range(6)]  # fmt: skip
    churn = []
    for i in range(4):
        churn.append({"type": "order", "account_id": "B2", "order_ref": f"c{i}", "instrument": RB,
                      "direction": "long", "offset": "open", "volume": 1, "price": 2990.0, "ts": now})  # fmt: skip
        churn.append(
            {
                "type": "cancel",
                "account_id": "B2",
                "order_ref": f"c{i}",
                "instrument": RB,
                "ts": now,
            }
        )
    fills = [
        {"type": "trade", "account_id": "B3", "instrument": RB, "direction": "long", "offset": "open",
         "volume": 1, "price": 3000.0, "trade_id": "T77", "ts": now},
        {"type": "trade", "account_id": "B3", "instrument": RB, "direction": "short", "offset": "close",
         "volume": 1, "price": 3000.0, "trade_id": "T77", "ts": now},
    ]  # fmt: skip
    world.send_accounts(orders + churn + fills)
    assert wait_until(lambda: "B1" in keys(world, "t.orders"), 10)
    assert wait_until(lambda: "B2" in keys(world, "t.cancels"), 10)
    assert wait_until(lambda: "B3" in keys(world, "t.self"), 10)
    assert "B2" not in keys(world, "t.orders")  # 4 orders: under the limit
    assert "B1" not in keys(world, "t.cancels")  # 6 orders, no cancels
    [b1] = [a for a in alerts(world, "t.orders") if a["key"] == "B1"]
    assert b1["value"] == 6.0


def test_node_rule_in_the_hierarchy(world):
    world.send_accounts([acct("U1", RB, 0.75, group="grpZ/subZ/unitZ")])
    assert wait_until(lambda: "grpZ/subZ/unitZ" in keys(world, "t.unit"), 15)
    assert "grpZ/subZ" not in keys(world, "t.unit")  # scope unit only


def test_volatility_and_composite_across_dimensions(world):
    world.send_accounts([acct("C1", CU, 0.78)])
    assert wait_until(lambda: "C1" in keys(world, "t.close"), 10)
    stop = threading.Event()

    def shake() -> None:  # -1.25% / -0.25% every 60 ms: a volatility spike that takes C1 past 80%
        low = True
        while not stop.is_set():
            world.market.set(**{CU: PRICES[CU] * (0.9875 if low else 0.9975)})
            low = not low
            stop.wait(0.06)

    t = threading.Thread(target=shake, daemon=True)
    t.start()
    try:
        assert wait_until(lambda: "C1" in keys(world, "t.warn"), 10)
        assert wait_until(lambda: CU in keys(world, "t.vol"), 20)
        assert wait_until(lambda: "C1" in keys(world, "t.combo"), 10)
    finally:
        stop.set()
        t.join(2)
        world.market.set(**{CU: PRICES[CU]})
    [combo] = [a for a in alerts(world, "t.combo") if a["key"] == "C1"]
    assert combo["severity"] == "critical" and combo["dimension"] == "composite"
    parts = {(c["rule_id"], c["key"]) for c in combo["attributes"]["components"]}
    assert parts == {("t.warn", "C1"), ("t.vol", CU)}
    assert combo["attributes"]["joined_on"] == CU
    assert "S2" not in keys(world, "t.combo")  # holds rb only: no join with a cu spike
