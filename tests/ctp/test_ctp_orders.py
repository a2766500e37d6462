"""CTP order routing: the executor's order wire (real BridgeClient, real sockets) → ReqOrderInsert
structs on a logged-in session; CTP's order and trade callbacks → the reports the executor reads;
refs persisted so a restarted router never sends an order twice; close-today per exchange;
dry run."""

from __future__ import annotations

import time

import pytest

from gateways.ctp.orders import CtpOrderRouter
from gateways.orders.bridge import BridgeClient
from tests.ctp.conftest import fill
from tests.ctp.world import initial_answers, log_in
from tests.zmq_util import free_tcp_endpoint, wait_until


def order(ref, **kw):
    base = dict(order_ref=ref, proposal_id="p1", account_id="u1", instrument="rb2601",
                direction="short", offset="close_today", volume=2, limit_price=3080.0,
                created_ts=time.time())  # fmt: skip
    base.update(kw)
    return base


class Executor:
    """The executor's real client side of the bridge, collecting reports."""

    def __init__(self, router):
        self.reports: list[dict] = []
        self.probes: list[dict] = []
        self.client = BridgeClient(router.order_endpoint, router.reports_endpoint, self._on)
        # PUB drops reports until the subscription has arrived: ask until an answer comes back
        assert wait_until(lambda: self._probe(), timeout=5)

    def _on(self, reports):
        for r in reports:
            (self.probes if r["order_ref"] == "probe" else self.reports).append(r)

    def _probe(self) -> bool:
        self.client.send([{"type": "query", "order_ref": "probe"}])
        return wait_until(lambda: bool(self.probes), timeout=0.05)

    def send(self, *orders):
        self.client.send(list(orders))

    def wait(self, pred, timeout=5):
        assert wait_until(lambda: pred(self.reports), timeout), self.reports

    def close(self):
        self.client.close()


def router_for(session, tmp_path, dry_run=False):
    order_ep, reports_ep = free_tcp_endpoint(), free_tcp_endpoint()
    router = CtpOrderRouter(order_ep, reports_ep, {"u1": session}, tmp_path / "refs.sqlite",
                            dry_run=dry_run, exchange_of={"m2601": "DCE"}.get)  # fmt: skip
    router.order_endpoint, router.reports_endpoint = order_ep, reports_ep
    return router.start()


@pytest.fixture
def ready(apis, session, rsp):
    log_in(session, apis, rsp)
    initial_answers(session, apis, rsp)
    session.step()
    assert session.state == "ready"
    return session


def inserts(session):
    return [c[1] for c in session.test["rec"].calls if c[0] == "ReqOrderInsert"]


def test_orders_reach_ctp_and_callbacks_become_reports(apis, ready, tmp_path):
    _, td = apis
    router = router_for(ready, tmp_path)
    ex = Executor(router)
    try:
        ex.send(order("fk0001"), order("fk0002", instrument="m2601", limit_price=0.0, volume=1))
        assert wait_until(lambda: len(inserts(ready)) == 2)
        shfe, dce = inserts(ready)
        assert (shfe.OrderRef, shfe.CombOffsetFlag, shfe.Direction) == ("8", "3", "1")
        assert (shfe.ExchangeID, shfe.VolumeTotalOriginal, shfe.LimitPrice) == ("SHFE", 2, 3080.0)
        assert (shfe.OrderPriceType, shfe.TimeCondition, shfe.CombHedgeFlag) == ("2", "3", "1")
        assert (shfe.InvestorID, shfe.BrokerID) == ("u1", "9999")
        # DCE has no close-today flag; price 0 is a market order (AnyPrice, IOC)
        assert (dce.OrderRef, dce.CombOffsetFlag, dce.ExchangeID) == ("9", "1", "DCE")
        assert (dce.OrderPriceType, dce.TimeCondition) == ("1", "1")
        base = dict(InvestorID="u1", InstrumentID="rb2601", ExchangeID="SHFE", FrontID=3,
                    SessionID=12345, OrderRef="8", Direction="1", CombOffsetFlag="3",
                    VolumeTotalOriginal=2, LimitPrice=3080.0, OrderSysID="  501")  # fmt: skip
        ready.spi.OnRtnOrder(fill(td.CThostFtdcOrderField(), OrderStatus="3", **base))
        ex.wait(lambda r: any(x["status"] == "accepted" for x in r))
        for i, volume in enumerate((1, 1)):
            ready.spi.OnRtnTrade(fill(td.CThostFtdcTradeField(), InvestorID="u1",
                                      InstrumentID="rb2601", ExchangeID="SHFE", Direction="1",
                                      OffsetFlag="3", Volume=volume, Price=3081.0 + i,
                                      TradeID=f"T{i}", OrderRef="8", OrderSysID="  501",
                                      TradeDate="20251201", TradeTime="09:31:00"))  # fmt: skip
        ex.wait(lambda r: any(x["status"] == "filled" for x in r))
        fills = [r for r in ex.reports if r["status"] in ("partially_filled", "filled")]
        assert [(r["status"], r["filled"], r["price"]) for r in fills] == [
            ("partially_filled", 1.0, 3081.0),
            ("filled", 2.0, 3082.0),
        ]
        assert all(r["order_ref"] == "fk0001" and r["proposal_id"] == "p1" for r in fills)
        # the account stream names the executor's ref too
        assert ready.ref_of(fill(td.CThostFtdcTradeField(), ExchangeID="SHFE", OrderSysID="  501",
                                 OrderRef="8")) == "fk0001"  # fmt: skip
        # the exchange refuses the market order
        ready.spi.OnErrRtnOrderInsert(
            fill(td.CThostFtdcInputOrderField(), OrderRef="9", InstrumentID="m2601"),
            fill(td.CThostFtdcRspInfoField(), ErrorID=15, ErrorMsg="bad price type"),
        )
        ex.wait(lambda r: any(x["status"] == "rejected" for x in r))
        rejected = next(r for r in ex.reports if r["status"] == "rejected")
        assert rejected["order_ref"] == "fk0002" and "CTP 15 bad price type" in rejected["reason"]
    finally:
        ex.close()
        router.stop()
    # a restarted router knows every ref it used: the re-sent order is a duplicate, not a resend
    router = router_for(ready, tmp_path)
    ex = Executor(router)
    try:
        ex.send(order("fk0001"), order("fk0003", offset="open", direction="long", volume=1))
        ex.wait(lambda r: any(x["status"] == "duplicate" for x in r))
        assert wait_until(lambda: len(inserts(ready)) == 3)
        assert [i.OrderRef for i in inserts(ready)] == ["8", "9", "10"]
        assert inserts(ready)[2].CombOffsetFlag == "0"
        dup = next(r for r in ex.reports if r["status"] == "duplicate")
        assert dup["order_ref"] == "fk0001"
        ex.client.send([{"type": "cancel", "order_ref": "fk0003"}])
        assert wait_until(lambda: "ReqOrderAction" in ready.test["rec"].names())
        action = ready.test["rec"].last("ReqOrderAction")[1]
        assert (action.OrderRef, action.FrontID, action.SessionID, action.ActionFlag) == (
            "10",
            3,
            12345,
            "0",
        )
    finally:
        ex.close()
        router.stop()


def test_dry_run_sends_nothing_and_says_so(ready, tmp_path):
    router = router_for(ready, tmp_path, dry_run=True)
    ex = Executor(router)
    try:
        ex.send(order("fk0100"))
        ex.wait(lambda r: len(r) == 1)
        assert ex.reports[0]["status"] == "rejected"
        assert ex.reports[0]["reason"].startswith("CTP_DRY_RUN")
        assert router.would_send[0]["CombOffsetFlag"] == "3"
        assert router.would_send[0]["InstrumentID"] == "rb2601"
        assert inserts(ready) == []
    finally:
        ex.close()
        router.stop()


def test_order_for_an_account_without_a_session_is_rejected(ready, tmp_path):
    router = router_for(ready, tmp_path)
    ex = Executor(router)
    try:
        ex.send(order("fk0200", account_id="someone_else"))
        ex.wait(lambda r: len(r) == 1)
        assert ex.reports[0]["status"] == "rejected" and "NO_CTP_SESSION" in ex.reports[0]["reason"]
    finally:
        ex.close()
        router.stop()
