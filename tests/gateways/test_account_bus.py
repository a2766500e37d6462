"""Account bus over real ZeroMQ: sequencing, snapshots for late joiners, gap repair, quarantine;
and the simulated account population."""

from __future__ import annotations

import time
from collections import Counter

import msgpack
import numpy as np
import pytest
import zmq

from gateways.accounts.bus import AccountBusClient
from gateways.sim.accounts import SimAccountSource
from gateways.sim.exchange import SimExchange, main_instruments
from infra.codec import decode_records, encode_records
from infra.specs import load_contract_table
from rules.book import AccountBook
from rules.sharding import BUCKETS, account_bucket, bucket_topic
from tests.zmq_util import free_tcp_endpoint, wait_until

ALL = list(range(BUCKETS))


def _deposits(ids: list[str], amount: float = 100.0) -> list[dict]:
    return [{"type": "deposit", "account_id": a, "amount": amount, "ts": time.time()} for a in ids]


def _drain(client: AccountBusClient, n: int, timeout: float = 5.0) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += client.poll(100)
    out += client.poll(50)  # and nothing more than expected
    return out


def _assert_exactly_once_in_order(records: list[dict]) -> None:
    keys = [(r["bucket"], r["bseq"]) for r in records]
    assert len(keys) == len(set(keys)), "duplicates delivered"
    per_bucket: dict[int, list[int]] = {}
    for bucket, bseq in keys:
        per_bucket.setdefault(bucket, []).append(bseq)
    for seqs in per_bucket.values():
        assert seqs == list(range(1, len(seqs) + 1)), "gap or disorder within a bucket"


def test_bus_stamps_and_late_joiner_gets_everything(bus, push):
    ids = [f"ACC{i:06d}" for i in range(300)]
    push.send(encode_records("account_events", _deposits(ids)))
    push.send(encode_records("account_events", _deposits(ids[:50], 5.0)))
    assert wait_until(lambda: bus.stats["published"] == 350)

    with AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, ALL) as late:
        got = _drain(late, 350)
        assert len(got) == 350
        _assert_exactly_once_in_order(got)
        assert [r["seq"] for r in got] == sorted(r["seq"] for r in got)
        first = got[0]
        assert first["bucket"] == account_bucket(first["account_id"]) and first["bus_ts"] > 0
        counts = Counter(r["bucket"] for r in got)
        assert all(int(bus.heads()[b]) == c for b, c in counts.items())

        push.send(
            encode_records("account_events", _deposits(ids[:10], 1.0))
        )  # live after the snapshot
        live = _drain(late, 10)
        assert [r["account_id"] for r in live] == ids[:10]
        _assert_exactly_once_in_order(got + live)
    assert bus.stats["snapshot_requests"] >= 1


def test_client_of_some_buckets_gets_only_those(bus, push):
    ids = [f"ACC{i:06d}" for i in range(200)]
    mine = sorted({account_bucket(a) for a in ids[:20]})
    with AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, mine) as client:
        time.sleep(0.2)
        push.send(encode_records("account_events", _deposits(ids)))
        expected = [a for a in ids if account_bucket(a) in mine]
        got = _drain(client, len(expected))
    assert sorted(r["account_id"] for r in got) == sorted(expected)


def _lose_sub(client: AccountBusClient) -> None:
    """Close the client's SUB: whatever the bus publishes now never reaches it (a real drop)."""
    client._poller.unregister(client._sub)
    client._sub.close(linger=0)


def _new_sub(client: AccountBusClient) -> None:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SNDHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"HEAD")
    for b in client.buckets:
        sub.setsockopt(zmq.SUBSCRIBE, bucket_topic(b))
    sub.connect(client.pub_endpoint)
    client._sub = sub
    client._poller.register(sub, zmq.POLLIN)


def test_client_repairs_messages_its_sub_missed(bus, push):
    ids = [f"ACC{i:06d}" for i in range(40)]
    with AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, ALL) as client:
        push.send(encode_records("account_events", _deposits(ids)))
        first = _drain(client, 40)
        assert len(first) == 40
        repaired = client.stats["gaps_repaired"]
        _lose_sub(client)
        push.send(encode_records("account_events", _deposits(ids[:10], 7.0)))
        assert wait_until(lambda: bus.stats["published"] == 50)
        _new_sub(client)
        time.sleep(0.2)
        # A later record skips ahead (gap by bseq); the heads show the other buckets behind.
        push.send(encode_records("account_events", _deposits(ids[:1], 9.0)))
        got = _drain(client, 11, timeout=5.0)
        assert sorted(r["amount"] for r in got) == [7.0] * 10 + [9.0]
        assert client.stats["gaps_repaired"] > repaired, client.stats
        assert client.stats["records"] == 51
        _assert_exactly_once_in_order(first + got)


def test_client_repairs_from_heads_alone(bus, push):
    ids = [f"ACC{i:06d}" for i in range(5)]
    with AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, ALL) as client:
        assert client.poll(200) == []
        _lose_sub(client)
        push.send(encode_records("account_events", _deposits(ids)))
        assert wait_until(lambda: bus.stats["published"] == 5)
        _new_sub(client)
        got = _drain(client, 5, timeout=3.0)  # no live record comes; a HEAD shows we are behind
        assert sorted(r["account_id"] for r in got) == ids
        assert client.stats["gaps_repaired"] >= 1


def test_malformed_frames_and_records_are_quarantined(bus, push):
    with AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, ALL) as client:
        time.sleep(0.2)
        push.send(b"\xc1 not msgpack")
        push.send(msgpack.packb({"v": 99, "kind": "account_events", "records": []}))
        push.send(encode_records("orders", _deposits(["ACC1"])))  # wrong kind
        push.send(encode_records("account_events", []))
        mixed = [
            {"type": "deposit", "account_id": "ACC1", "amount": 1.0},
            {"type": "teleport", "account_id": "ACC2"},
            {"type": "deposit", "account_id": 42},
            {"type": "deposit"},
            {"type": "withdraw", "account_id": "ACC3", "amount": 2.0},
        ]
        push.send(msgpack.packb({"v": 1, "kind": "account_events", "records": mixed}))
        push.send(msgpack.packb({"v": 1, "kind": "account_events", "records": [1, 2]}))
        got = _drain(client, 2)
        assert [r["account_id"] for r in got] == ["ACC1", "ACC3"]
        assert wait_until(lambda: bus.stats["rejected"] == 7)
    reasons = [q["reason"] for q in bus.quarantine]
    assert any("msgpack" in r for r in reasons) and any("version" in r for r in reasons)
    assert any("teleport" in r for r in reasons) and any("account_id" in r for r in reasons)
    assert bus.stats["received"] == 2

    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(bus.snapshot_endpoint)
    try:
        dealer.send_multipart([b"", b"garbage"])
        assert dealer.poll(2000)
        reply = msgpack.unpackb(dealer.recv_multipart()[-1])
        assert reply["kind"] == "error"
        request = {"v": 1, "kind": "snapshot_request", "from": {str(account_bucket("ACC3")): 0}}
        dealer.send_multipart([b"", msgpack.packb(request)])
        assert dealer.poll(2000)
        _kind, records = decode_records(dealer.recv_multipart()[-1], "account_events")
        assert [r["account_id"] for r in records] == ["ACC3"]
    finally:
        dealer.close()


# -- simulated accounts --------------------------------------------------------------------
@pytest.fixture(scope="module")
def market():
    table = load_contract_table()
    instruments = main_instruments(table, 30)
    ex = SimExchange(free_tcp_endpoint(), instruments, table)
    ex.step()
    return table, instruments, ex.prices()


def _risk_degrees(accounts: list[dict], table, prices) -> np.ndarray:
    """As a shard sees them: CTP 逐日盯市 with today's prices as the previous settlement."""
    book = AccountBook(table)
    for acc in accounts:
        book.apply_snapshot(acc)
    names = list(prices)
    last = np.array([prices[n] for n in names])
    book.set_prices(names, last, pre_settlement=last)
    return book.mark().risk_degree.copy()


def test_sim_accounts_risk_degree_spread(market):
    table, instruments, prices = market
    source = SimAccountSource("tcp://127.0.0.1:1", instruments, table, prices, n_accounts=2000)
    accounts = source.accounts()
    assert [a["account_id"] for a in accounts[:2]] == ["ACC000001", "ACC000002"]
    assert len({a["group_path"] for a in accounts}) == 24
    assert accounts[0]["group_path"] == "grpA/sub1/unit01"
    assert all(len(a["positions"]) == 3 for a in accounts)
    rd = _risk_degrees(accounts, table, prices)
    assert rd.min() >= 0.2 - 1e-4 and rd.max() <= 0.78 + 1e-4
    assert (rd > 0.72).sum() > 0.1 * len(rd)  # a band close to the 80% line
    assert (rd < 0.4).sum() > 0.1 * len(rd)
    again = SimAccountSource("tcp://127.0.0.1:1", instruments, table, prices, n_accounts=2000)
    assert again.accounts() == accounts  # deterministic


def test_sim_accounts_publish_through_the_bus(market, bus):
    table, instruments, prices = market
    source = SimAccountSource(
        bus.inbound_endpoint, instruments, table, prices, n_accounts=4500, event_rate_hz=50
    )
    with AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, ALL) as client:
        assert source.publish_snapshots() == 4500
        assert source.stats["frames"] == 3
        got = _drain(client, 4500)
        assert len(got) == 4500 and {r["type"] for r in got} == {"snapshot"}
        source.deposit("ACC000001", 1000)
        source.trade("ACC000002", instruments[0], "long", "open", 1, prices[instruments[0]])
        with source:  # background deposits/withdrawals
            more = _drain(client, 5, timeout=3.0)
        assert more[0]["type"] == "deposit" and more[0]["account_id"] == "ACC000001"
        assert more[1]["type"] == "trade" and more[1]["volume"] == 1.0
        assert {r["type"] for r in more[2:]} <= {"deposit", "withdraw"} and len(more) >= 5
    source.stop()
