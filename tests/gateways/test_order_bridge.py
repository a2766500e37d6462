"""The order bridge's wire format between fengkong's BridgeClient and a broker's process
(BrokerBridge), over real ZeroMQ on loopback: orders, duplicates, queries, trading state."""

from __future__ import annotations

import threading
import time

import pytest

from gateways.orders.bridge import BridgeClient, BrokerBridge, wire_order
from tests.zmq_util import free_tcp_endpoint, wait_until


class InstantBroker(BrokerBridge):
    """A broker whose exchange fills every order at its limit price at once."""

    def on_order(self, order: dict) -> None:
        self.report(order, "accepted", 0.0)
        self.report(order, "filled", float(order["volume"]), price=order["limit_price"])

    def on_cancel(self, order_ref: str) -> None:
        order = self.latest[order_ref]
        self.report(order, "cancelled", order["filled"])


@pytest.fixture
def bridge():
    orders, reports = free_tcp_endpoint(), free_tcp_endpoint()
    broker = InstantBroker(orders, reports).start()
    got: list[dict] = []
    lock = threading.Lock()

    def on_reports(rs: list[dict]) -> None:
        with lock:
            got.extend(rs)

    client = BridgeClient(orders, reports, on_reports)
    # PUB/SUB joins asynchronously: query until the first answer shows the link is up.
    assert wait_until(lambda: client.send([{"type": "query", "order_ref": "ping"}]) or got, 5, 0.1)
    yield client, broker, got
    client.close()
    broker.stop()


def _order(ref: str, offset: str = "close") -> dict:
    return wire_order(
        {"order_ref": ref, "proposal_id": "P", "account_id": "A1", "instrument": "rb2601",
         "direction": "short", "offset": offset, "volume": 2.0, "limit_price": 3000.0,
         "created_ts": time.time(), "reason": "not on the wire"}
    )  # fmt: skip


def _statuses(got: list[dict], ref: str) -> list[str]:
    return [r["status"] for r in got if r["order_ref"] == ref]


def test_order_fills_duplicate_is_refused_and_query_answers(bridge):
    client, _broker, got = bridge
    assert "reason" not in _order("o1")
    client.send([_order("o1")])
    assert wait_until(lambda: _statuses(got, "o1") == ["accepted", "filled"])
    client.send([_order("o1"), {"type": "query", "order_ref": "o1"},
                 {"type": "query", "order_ref": "never"}])  # fmt: skip
    assert wait_until(lambda: len(_statuses(got, "o1")) == 4)
    assert _statuses(got, "o1")[2:] == ["duplicate", "filled"]
    assert _statuses(got, "never") == ["unknown"]


def test_reducing_account_may_not_open(bridge):
    client, broker, got = bridge
    client.send([{"type": "trading_state", "account_id": "A1", "state": "REDUCING"}])
    assert wait_until(lambda: any(r["status"] == "trading_state" for r in got))
    client.send([_order("open1", offset="open"), _order("close1")])
    assert wait_until(lambda: "filled" in _statuses(got, "close1"))
    assert wait_until(lambda: _statuses(got, "open1") == ["rejected"])
    assert next(r for r in got if r["order_ref"] == "open1")["reason"] == "TRADING_STATE_REDUCING"
    assert broker.reducing == {"A1"}
