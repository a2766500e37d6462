"""CTP trading sessions: real structs through the TraderSpi; what reaches the real account bus
(snapshot, trades of every offset flag, orders and cancels), paced queries with the query-limit
and not-ready errors, a login failure, a disconnect, and a reconciliation drift."""

from __future__ import annotations

import logging

import pytest

from tests.ctp.conftest import fill, read_records
from tests.ctp.world import SECRET_AC, SECRET_PW, answer, initial_answers, log_in


def test_login_chain_snapshot_and_trades_of_every_offset_flag(apis, bus, session, rsp, caplog):
    caplog.set_level(logging.DEBUG)
    _, td = apis
    _, client = bus
    rec = session.test["rec"]
    session.spi.OnFrontConnected()
    _, auth, _ = rec.last("ReqAuthenticate")
    assert (auth.AppID, auth.AuthCode, auth.BrokerID, auth.UserID) == (
        "fengkong_test",
        SECRET_AC,
        "9999",
        "u1",
    )
    session.spi.OnRspAuthenticate(td.CThostFtdcRspAuthenticateField(), rsp(), 1, True)
    assert rec.last("ReqUserLogin")[1].Password == SECRET_PW
    # a trade that comes before the snapshot is held until it is out
    early = fill(td.CThostFtdcTradeField(), InvestorID="u1", InstrumentID="rb2601",
                 ExchangeID="SHFE", Direction="0", OffsetFlag="0", Volume=1, Price=3060.0,
                 TradeID="  100", OrderRef="1", OrderSysID="  9", TradeDate="20251128",
                 TradeTime="21:01:00")  # fmt: skip
    session.spi.OnRtnTrade(early)
    login = fill(td.CThostFtdcRspUserLoginField(), FrontID=3, SessionID=12345, MaxOrderRef="7",
                 TradingDay="20251201")  # fmt: skip
    session.spi.OnRspUserLogin(login, rsp(), 2, True)
    assert rec.last("ReqSettlementInfoConfirm")[1].InvestorID == "u1"
    session.spi.OnRspSettlementInfoConfirm(
        td.CThostFtdcSettlementInfoConfirmField(), rsp(), 3, True
    )
    initial_answers(session, apis, rsp, limit_errors=True)
    assert session.state == "ready"
    assert session.queries.stats["refused"] == 2 and session.queries.stats["not_ready"] == 1
    session.step()
    got = read_records(client, 2)
    assert [r["type"] for r in got] == ["snapshot", "trade"]
    snap = got[0]
    assert snap["account_id"] == "u1" and snap["group_path"] == "grpA/sub1/u1"
    assert snap["pre_balance"] == 1_000_000.0 and snap["deposit"] == 5_000.0
    assert snap["positions"] == [{"instrument": "rb2601", "direction": "long", "volume": 4.0,
                                  "today_volume": 0.0, "cost_price": 3050.0, "open_price": 3020.0}]  # fmt: skip
    assert snap["margin_markup"] == pytest.approx(0.02)  # investor 9% over the exchange's 7%
    assert got[1]["trade_id"] == "SHFE:100" and got[1]["offset"] == "open"
    # open fee: 0.0001 × 3060 × 1 × 10 + 1.0 per lot
    assert got[1]["commission"] == pytest.approx(3.06 + 1.0)
    flags = ["0", "1", "2", "3", "4", "5", "6"]
    for i, flag in enumerate(flags):
        session.spi.OnRtnTrade(fill(td.CThostFtdcTradeField(), InvestorID="u1",
                                    InstrumentID="rb2601", ExchangeID="SHFE",
                                    Direction="1" if flag != "0" else "0", OffsetFlag=flag,
                                    Volume=1, Price=3070.0, TradeID=f"{200 + i}", OrderRef="2",
                                    TradeDate="20251201", TradeTime="09:01:00"))  # fmt: skip
    session.step()
    trades = read_records(client, len(flags))
    assert [t["offset"] for t in trades] == [
        "open",
        "close",
        "close",
        "close_today",
        "close",
        "close",
        "close",
    ]
    assert [t["direction"] for t in trades] == ["long"] + ["short"] * 6
    assert trades[3]["commission"] == pytest.approx(0.0003 * 3070 * 10)
    assert all(t["order_ref"] == "ctp:2" for t in trades)
    # credentials never reach the logs or the session's view
    text = caplog.text + repr(session.view()) + repr(session._credentials)
    assert SECRET_PW not in text and SECRET_AC not in text


def test_orders_and_cancels_become_the_order_stream(apis, bus, session, rsp):
    _, td = apis
    _, client = bus
    log_in(session, apis, rsp)
    initial_answers(session, apis, rsp)
    session.step()
    assert read_records(client, 1)[0]["type"] == "snapshot"
    order = dict(InvestorID="u1", InstrumentID="rb2601", ExchangeID="SHFE", FrontID=3,
                 SessionID=12345, OrderRef="8", Direction="1", CombOffsetFlag="3",
                 VolumeTotalOriginal=2, LimitPrice=3080.0, InsertDate="20251201",
                 InsertTime="09:30:00", CancelTime="09:31:00", OrderSysID="  77")  # fmt: skip
    for status in ("a", "3", "3", "5"):
        session.spi.OnRtnOrder(fill(td.CThostFtdcOrderField(), OrderStatus=status, **order))
    session.step()
    got = read_records(client, 2)
    assert [r["type"] for r in got] == ["order", "cancel"]
    assert got[0]["offset"] == "close_today" and got[0]["direction"] == "short"
    assert got[0]["volume"] == 2.0 and got[0]["price"] == 3080.0
    assert got[0]["order_ref"] == got[1]["order_ref"] == "ctp:8"


def test_login_failure_and_disconnect_restart_the_chain(apis, session, rsp):
    _, td = apis
    session.spi.OnFrontConnected()
    session.spi.OnRspAuthenticate(td.CThostFtdcRspAuthenticateField(), rsp(), 1, True)
    session.spi.OnRspUserLogin(td.CThostFtdcRspUserLoginField(), rsp(3, "invalid login"), 2, True)
    assert session.state == "failed" and session.stats["login_failures"] == 1
    assert "login: 3 invalid login" in session.stats["last_error"]
    # the front drops and comes back: the chain starts again and this time gets through
    session.spi.OnFrontDisconnected(0x1001)
    assert session.state == "connecting" and session.stats["disconnects"] == 1
    log_in(session, apis, rsp)
    assert session.state == "querying" and session.stats["connects"] == 2
    answer(session, "ReqQryInstrument", "OnRspQryInstrument", [], rsp)
    session.spi.OnFrontDisconnected(0x2003)  # queries in flight are lost with the connection
    assert not session.queries.in_flight and session.queries.pending
    assert session.state == "connecting"


def test_a_relogin_reconciles_instead_of_replacing_the_account(apis, bus, session, rsp):
    _, client = bus
    held: list[str] = []
    session.on_instruments = held.extend  # the market-data gateway subscribes these
    log_in(session, apis, rsp)
    initial_answers(session, apis, rsp)
    session.step()
    assert [r["type"] for r in read_records(client, 1)] == ["snapshot"]
    assert held == ["rb2601"]
    session.spi.OnFrontDisconnected(0x1001)
    log_in(session, apis, rsp)
    session.test["own"]["u1"] = {"equity": 1_004_000.0, "margin": 11_000.0,
                                 "positions": [{"instrument": "rb2601", "direction": "long", "volume": 4.0}]}  # fmt: skip
    initial_answers(session, apis, rsp)
    session.step()
    assert session.state == "ready" and session.stats["reconciles"] == 1
    assert client.poll(300) == []  # no second snapshot: it would wipe the day's trades
    assert session.test["events"] == []


def test_authentication_failure_stops_before_login(apis, session, rsp):
    _, td = apis
    session.spi.OnFrontConnected()
    session.spi.OnRspAuthenticate(td.CThostFtdcRspAuthenticateField(), rsp(63, "bad auth"), 1, True)
    assert session.state == "failed"
    assert "ReqUserLogin" not in session.test["rec"].names()


def test_reconciliation_drift_raises_account_events(apis, bus, session, rsp):
    _, td = apis
    log_in(session, apis, rsp)
    initial_answers(session, apis, rsp)
    own = session.test["own"]
    # fengkong's figures: equity 150 below CTP's, margin equal, one lot fewer held
    own["u1"] = {"equity": 1_003_850.0, "margin": 11_000.0,
                 "positions": [{"instrument": "rb2601", "direction": "long", "volume": 3.0}]}  # fmt: skip
    session.request_reconcile()
    answer(session, "ReqQryInvestorPosition", "OnRspQryInvestorPosition", [
        fill(td.CThostFtdcInvestorPositionField(), InstrumentID="rb2601", PosiDirection="2",
             Position=4, YdPosition=4, PreSettlementPrice=3050.0),
    ], rsp)  # fmt: skip
    answer(session, "ReqQryTradingAccount", "OnRspQryTradingAccount", [
        fill(td.CThostFtdcTradingAccountField(), PreBalance=1_000_000.0, Balance=1_004_000.0,
             CurrMargin=11_000.0),
    ], rsp)  # fmt: skip
    events = session.test["events"]
    assert [e.rule_id for e in events] == ["account.reconcile_drift"] * 2
    by_figure = {e.attributes["figure"]: e for e in events}
    eq = by_figure["equity"]
    assert eq.key == "u1" and eq.value == pytest.approx(150.0) and eq.threshold == 1.0
    assert eq.attributes["ctp"] == 1_004_000.0 and eq.attributes["fengkong"] == 1_003_850.0
    assert by_figure["position rb2601 long"].value == 1.0
    assert session.stats["reconciles"] == 1 and session.stats["drifts"] == 2
    # in tolerance: no event
    own["u1"] = {"equity": 1_004_000.4, "margin": 11_000.0,
                 "positions": [{"instrument": "rb2601", "direction": "long", "volume": 4.0}]}  # fmt: skip
    session.request_reconcile()
    answer(session, "ReqQryInvestorPosition", "OnRspQryInvestorPosition", [
        fill(td.CThostFtdcInvestorPositionField(), InstrumentID="rb2601", PosiDirection="2",
             Position=4, YdPosition=4),
    ], rsp)  # fmt: skip
    answer(session, "ReqQryTradingAccount", "OnRspQryTradingAccount", [
        fill(td.CThostFtdcTradingAccountField(), Balance=1_004_000.0, CurrMargin=11_000.0),
    ], rsp)  # fmt: skip
    assert len(events) == 2 and session.stats["reconciles"] == 2
