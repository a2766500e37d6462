"""Simulated order gateway over real ZeroMQ: a scripted market, orders in, reports and trades out."""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from gateways.accounts.bus import AccountBus, AccountBusClient
from gateways.sim.order_gateway import SimOrderGateway
from infra.codec import decode_records, encode_records, encode_ticks
from infra.specs import load_contract_table
from rules.model import Direction, Offset, Order, TickBatch
from rules.sharding import BUCKETS
from tests.zmq_util import free_tcp_endpoint, wait_until

UPPER, LOWER = 3675.0, 3325.0  # rb2601 around a 3500 pre-settlement, 5% limits


class Rig:
    """A scripted market PUB, the gateway, an account bus, a report SUB and an order PUSH."""

    def __init__(self, **gateway_kwargs) -> None:
        ctx = zmq.Context.instance()
        self.market = ctx.socket(zmq.PUB)
        market_endpoint = free_tcp_endpoint()
        self.market.bind(market_endpoint)
        self.bus = AccountBus(free_tcp_endpoint(), free_tcp_endpoint(), free_tcp_endpoint()).start()
        self.gateway = SimOrderGateway(
            free_tcp_endpoint(), free_tcp_endpoint(), [market_endpoint], self.bus.inbound_endpoint,
            load_contract_table(), **gateway_kwargs,
        ).start()  # fmt: skip
        self.reports = ctx.socket(zmq.SUB)
        self.reports.setsockopt(zmq.SUBSCRIBE, b"R")
        self.reports.connect(self.gateway.reports_endpoint)
        self.orders = ctx.socket(zmq.PUSH)
        self.orders.connect(self.gateway.order_endpoint)
        self.trades = AccountBusClient(
            self.bus.pub_endpoint, self.bus.snapshot_endpoint, list(range(BUCKETS))
        )
        self.trades.connect()
        self.seen: list[dict] = []

    def tick(self, instrument: str, last: float) -> None:
        """Publish a price until the gateway has it (the SUB may still be joining)."""
        batch = TickBatch(
            instruments=[instrument],
            instrument_idx=np.zeros(1, np.uint32),
            last=np.array([last]),
            volume=np.array([100.0]),
            open_interest=np.array([1000.0]),
            bid=np.array([last - 1]),
            ask=np.array([last + 1]),
            exchange_ts=np.array([time.time()]),
            upper_limit=np.array([UPPER]),
            lower_limit=np.array([LOWER]),
            pre_settlement=np.array([3500.0]),
        )
        frame = [b"T", encode_ticks(batch)]
        for _ in range(100):
            self.market.send_multipart(frame)
            if wait_until(lambda: self.gateway.last_price(instrument) == last, timeout=0.05):
                return
        raise AssertionError(f"gateway never saw {instrument} at {last}")

    def send(self, *records: dict) -> None:
        self.orders.send(encode_records("orders", list(records)))

    def reports_for(self, order_ref: str, n: int, timeout: float = 3.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self._mine(order_ref)) < n:
            if self.reports.poll(50):
                topic, payload = self.reports.recv_multipart()
                self.seen += decode_records(payload, "order_reports")[1]
        return self._mine(order_ref)

    def _mine(self, order_ref: str) -> list[dict]:
        return [r for r in self.seen if r["order_ref"] == order_ref]

    def trade_records(self, n: int, timeout: float = 3.0) -> list[dict]:
        out: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            out += self.trades.poll(50)
        return out + self.trades.poll(100)

    def close(self) -> None:
        self.gateway.stop()
        self.trades.close()
        self.bus.stop()
        for sock in (self.market, self.reports, self.orders):
            sock.close(linger=0)


@pytest.fixture
def rig():
    r = Rig()
    time.sleep(0.2)  # let the report SUB join before the first order
    yield r
    r.close()


def _order(
    ref: str,
    direction: Direction,
    volume: float = 2,
    limit: float = 0.0,
    instrument: str = "rb2601",
) -> dict:
    return Order(
        order_ref=ref, proposal_id="P1", account_id="ACC000001", instrument=instrument,
        direction=direction, offset=Offset.CLOSE, volume=volume, limit_price=limit,
        created_ts=time.time(),
    ).to_record()  # fmt: skip


def test_order_fills_and_trade_reaches_the_bus(rig):
    rig.tick("rb2601", 3500.0)
    rig.send(_order("P1-0", Direction.SHORT))
    reports = rig.reports_for("P1-0", 2)
    assert [r["status"] for r in reports] == ["accepted", "filled"]
    assert (
        reports[1]["filled"] == 2 and reports[1]["remaining"] == 0 and reports[1]["price"] == 3500.0
    )
    assert reports[1]["proposal_id"] == "P1" and reports[1]["account_id"] == "ACC000001"
    trades = rig.trade_records(1)
    assert len(trades) == 1
    trade = trades[0]
    assert (
        trade["type"] == "trade"
        and trade["order_ref"] == "P1-0"
        and trade["account_id"] == "ACC000001"
    )
    assert (trade["direction"], trade["offset"], trade["volume"], trade["price"]) == (
        "short",
        "close",
        2,
        3500.0,
    )
    assert trade["commission"] == pytest.approx(4.0) and trade["trade_id"] and trade["bseq"] >= 1


def test_reused_order_ref_is_refused(rig):
    rig.tick("rb2601", 3500.0)
    rig.send(_order("P2-0", Direction.LONG, volume=1))
    assert [r["status"] for r in rig.reports_for("P2-0", 2)] == ["accepted", "filled"]
    rig.send(_order("P2-0", Direction.LONG, volume=1))  # a retry with the same id
    reports = rig.reports_for("P2-0", 3)
    assert reports[2]["status"] == "duplicate" and reports[2]["filled"] == 0
    assert rig.gateway.stats["duplicates"] == 1 and rig.gateway.stats["fills"] == 1
    assert len(rig.trade_records(1, timeout=1.0)) == 1  # one trade, not two


def test_sell_at_limit_down_waits_until_price_leaves_the_limit(rig):
    rig.tick("rb2601", LOWER)
    rig.send(_order("P3-0", Direction.SHORT))
    assert [r["status"] for r in rig.reports_for("P3-0", 1)] == ["accepted"]
    rig.tick("rb2601", LOWER)  # still locked: no fill on this batch either
    time.sleep(0.2)
    assert rig.gateway.working() == ["P3-0"] and rig.gateway.stats["fills"] == 0
    rig.tick("rb2601", LOWER + 5)
    reports = rig.reports_for("P3-0", 2)
    assert reports[-1]["status"] == "filled" and reports[-1]["price"] == LOWER + 5
    assert rig.trade_records(1)[0]["price"] == LOWER + 5


def test_limit_price_respected_and_cancel(rig):
    rig.tick("rb2601", 3500.0)
    rig.send(_order("P4-0", Direction.LONG, limit=3490.0))  # buyer's limit below the market
    assert [r["status"] for r in rig.reports_for("P4-0", 1)] == ["accepted"]
    rig.send({"type": "cancel", "order_ref": "P4-0"})
    reports = rig.reports_for("P4-0", 2)
    assert reports[-1]["status"] == "cancelled" and reports[-1]["remaining"] == 2
    assert rig.gateway.working() == [] and rig.gateway.stats["fills"] == 0


def test_unknown_instrument_and_no_price_are_rejected(rig):
    rig.send(
        _order("P5-0", Direction.LONG, instrument="zz2601"),
        _order("P5-1", Direction.LONG, instrument="cu2601"),
    )
    unknown = rig.reports_for("P5-0", 1)[0]
    no_price = rig.reports_for("P5-1", 1)[0]
    assert unknown["status"] == "rejected" and "unknown contract" in unknown["reason"]
    assert no_price["status"] == "rejected" and "no market price" in no_price["reason"]
    rig.orders.send(b"not a frame")
    rig.send({"order_ref": "P5-2", "direction": "up"})
    assert rig.reports_for("P5-2", 1)[0]["status"] == "rejected"
    assert wait_until(lambda: rig.gateway.stats["bad_frames"] == 1)


def test_partial_fill_in_two_parts():
    rig = Rig(partial_fill_prob=1.0)
    try:
        time.sleep(0.2)
        rig.tick("rb2601", 3500.0)
        rig.send(_order("P6-0", Direction.SHORT, volume=5))
        assert [r["status"] for r in rig.reports_for("P6-0", 2)] == ["accepted", "partially_filled"]
        rig.tick("rb2601", 3501.0)
        reports = rig.reports_for("P6-0", 3)
        assert [(r["status"], r["filled"], r["remaining"]) for r in reports[1:]] == [
            ("partially_filled", 3, 2),
            ("filled", 5, 0),
        ]
        trades = rig.trade_records(2)
        assert [t["volume"] for t in trades] == [3, 2] and len({t["trade_id"] for t in trades}) == 2
    finally:
        rig.close()
