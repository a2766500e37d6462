"""Settlement records on the account bus over real ZeroMQ: a copy per bucket on the bus, one
settlement per client, in order with the account records around it, live and after a restart
(snapshot replay); and the wire format's required-field checks (gateways.accounts.wire)."""

from __future__ import annotations

import time

import pytest

from gateways.accounts.bus import AccountBusClient
from gateways.accounts.wire import record_problem
from infra.codec import encode_records
from rules.sharding import BUCKETS, account_bucket, buckets_of_shard
from tests.zmq_util import wait_until

SETTLEMENT = {"type": "settlement", "trading_day": "20210104", "next_trading_day": "20210105",
              "prices": {"IF2101": 5300.0, "rb2105": 4200.0}, "ts": 1609750800.0}  # fmt: skip


def _deposits(ids: list[str], amount: float) -> list[dict]:
    return [{"type": "deposit", "account_id": a, "amount": amount, "ts": time.time()} for a in ids]


def _drain_until(client: AccountBusClient, done, timeout: float = 10.0) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while not done(out) and time.monotonic() < deadline:
        out += client.poll(100)
    out += client.poll(50)
    return out


def _check_order(got: list[dict], buckets: list[int], ids: list[str]) -> None:
    mine = [a for a in ids if account_bucket(a) in set(buckets)]
    settlements = [i for i, r in enumerate(got) if r["type"] == "settlement"]
    assert len(settlements) == 1, f"{len(settlements)} settlements delivered, expected one"
    s = settlements[0]
    before, after = got[:s], got[s + 1 :]
    assert sorted(r["account_id"] for r in before) == sorted(mine)
    assert sorted(r["account_id"] for r in after) == sorted(mine)
    assert all(r["amount"] == 1.0 for r in before) and all(r["amount"] == 2.0 for r in after)
    assert got[s]["trading_day"] == "20210104" and got[s]["prices"]["IF2101"] == 5300.0


def test_settlement_reaches_each_shard_once_in_order_live_and_replayed(bus, push):
    ids = [f"ACC{i:06d}" for i in range(400)]
    shards = [buckets_of_shard(k, 3) for k in range(3)]
    live = [AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, b).connect() for b in shards]
    try:
        # connected: each has its (empty) first snapshot reply, nothing was published yet
        assert wait_until(lambda: all(not c.poll(10) and c.stats["snapshots"] >= 1 for c in live))
        push.send(encode_records("account_events", _deposits(ids, 1.0)))
        push.send(encode_records("account_events", [SETTLEMENT]))
        push.send(encode_records("account_events", _deposits(ids, 2.0)))
        assert wait_until(lambda: bus.stats["published"] == 800 + BUCKETS)
        heads = bus.heads()
        assert all(int(h) >= 1 for h in heads), "every bucket holds a copy of the settlement"
        for client, buckets in zip(live, shards, strict=True):
            n = sum(1 for a in ids if account_bucket(a) in set(buckets))
            got = _drain_until(client, lambda out, n=n: len(out) >= 2 * n + 1)
            _check_order(got, buckets, ids)
            assert client.stats["settlements"] == 1
    finally:
        for c in live:
            c.close()
    # a restarted shard replays everything from the snapshot socket: same order, one settlement
    with AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, shards[1]) as restarted:
        n = sum(1 for a in ids if account_bucket(a) in set(shards[1]))
        got = _drain_until(restarted, lambda out: len(out) >= 2 * n + 1)
        _check_order(got, shards[1], ids)


def test_two_settlements_in_a_row_each_once(bus, push):
    second = {**SETTLEMENT, "trading_day": "20210105", "next_trading_day": "20210106"}
    push.send(encode_records("account_events", [SETTLEMENT, second, *_deposits(["A1"], 1.0)]))
    assert wait_until(lambda: bus.stats["received"] == 3)
    with AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, list(range(BUCKETS))) as c:
        got = _drain_until(c, lambda out: len(out) >= 3)
    assert [r["type"] for r in got] == ["settlement", "settlement", "deposit"]
    assert [r.get("trading_day") for r in got[:2]] == ["20210104", "20210105"]


def test_settlement_without_account_is_routed_but_other_kinds_need_one(bus, push):
    push.send(encode_records("account_events", [
        {"type": "deposit", "amount": 1.0}, {"type": "settlement"}]))  # fmt: skip
    assert wait_until(lambda: bus.stats["rejected"] + bus.stats["received"] == 2)
    assert bus.stats["rejected"] == 1 and "account_id" in bus.quarantine[0]["reason"]


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"type": "trade", "account_id": "A", "instrument": "rb2105", "direction": "long",
          "volume": 1}, "price"),
        ({"type": "deposit", "account_id": "A"}, "amount"),
        ({"type": "withdraw", "account_id": "A", "amount": "12"}, "amount"),
        ({"type": "snapshot", "account_id": "A"}, "pre_balance"),
        ({"type": "snapshot", "account_id": "A", "pre_balance": 1.0,
          "positions": [{"instrument": "rb2105", "direction": "long", "volume": 1}]},
         "cost_price"),
        ({"type": "order", "account_id": "A", "instrument": "rb2105"}, "order_ref"),
        ({"type": "cancel", "account_id": "A"}, "order_ref"),
        ({**SETTLEMENT, "next_trading_day": None}, "next_trading_day"),
        ({**SETTLEMENT, "prices": {"IF2101": float("nan")}}, "prices['IF2101']"),
        ({**SETTLEMENT, "trading_day": "2021-01-04"}, "trading_day"),
    ],
)  # fmt: skip
def test_record_missing_a_required_field_is_named(record, field):
    problem = record_problem(record)
    assert problem is not None and field in problem, problem


def test_complete_records_pass():
    assert record_problem(SETTLEMENT) is None
    assert record_problem({"type": "settlement", "trading_day": "20200420",
                           "next_trading_day": "20200421", "prices": {"CL2005": -37.63}}) is None  # fmt: skip
    assert record_problem({"type": "remove", "account_id": "A"}) is None
    assert record_problem({"type": "trade", "account_id": "A", "instrument": "rb2105",
                           "direction": "short", "volume": 2, "price": -1.5}) is None  # fmt: skip
