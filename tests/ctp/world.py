"""A logged-in CTP trading session for the tests: the config, the request recorder's answers
through the real SPI, and the initial query answers (real structs)."""

from __future__ import annotations

from gateways.ctp.config import InvestorConfig
from tests.ctp.conftest import fill
from tests.zmq_util import wait_until

SECRET_PW, SECRET_AC = "pw-Zq83!", "AUTHCODE-0xDEAD"


def investor(**kw):
    base = dict(name="t1", fronts=("tcp://127.0.0.1:1",), broker_id="9999", user_id="u1",
                app_id="fengkong_test", query_interval_s=0.01, reconcile_s=0,
                group_path="grpA/sub1/u1", equity_tolerance=1.0, margin_tolerance=1.0)  # fmt: skip
    base.update(kw)
    return InvestorConfig(**base)


def answer(session, name, callback, rows, rsp, code=0, msg=""):
    """Pump the session until it sends request `name`, then answer it through the SPI."""
    rec = session.test["rec"]
    before = sum(1 for c in rec.calls if c[0] == name)
    assert wait_until(
        lambda: session.step() or sum(1 for c in rec.calls if c[0] == name) > before, 5
    )
    _, req, rid = rec.last(name)
    cb = getattr(session.spi, callback)
    if not rows:
        cb(None, rsp(code, msg), rid, True)
    for i, row in enumerate(rows):
        cb(row, rsp(code, msg), rid, i == len(rows) - 1)
    return req


def log_in(session, apis, rsp):
    _, td = apis
    session.spi.OnFrontConnected()
    session.spi.OnRspAuthenticate(td.CThostFtdcRspAuthenticateField(), rsp(), 1, True)
    login = fill(td.CThostFtdcRspUserLoginField(), FrontID=3, SessionID=12345, MaxOrderRef="7",
                 TradingDay="20251201")  # fmt: skip
    session.spi.OnRspUserLogin(login, rsp(), 2, True)
    session.spi.OnRspSettlementInfoConfirm(
        td.CThostFtdcSettlementInfoConfirmField(), rsp(), 3, True
    )


def initial_answers(session, apis, rsp, limit_errors=False):
    _, td = apis
    answer(session, "ReqQryInstrument", "OnRspQryInstrument", [
        fill(td.CThostFtdcInstrumentField(), InstrumentID="rb2601", ExchangeID="SHFE",
             ProductID="rb", VolumeMultiple=10, PriceTick=1.0, LongMarginRatio=0.07,
             ShortMarginRatio=0.07),
    ], rsp)  # fmt: skip
    answer(session, "ReqQryInstrumentMarginRate", "OnRspQryInstrumentMarginRate", [
        fill(td.CThostFtdcInstrumentMarginRateField(), InstrumentID="rb2601",
             LongMarginRatioByMoney=0.09, ShortMarginRatioByMoney=0.09),
    ], rsp)  # fmt: skip
    answer(session, "ReqQryInstrumentCommissionRate", "OnRspQryInstrumentCommissionRate", [
        fill(td.CThostFtdcInstrumentCommissionRateField(), InstrumentID="rb",
             OpenRatioByMoney=0.0001, CloseRatioByMoney=0.0001, CloseTodayRatioByMoney=0.0003,
             OpenRatioByVolume=1.0),
    ], rsp)  # fmt: skip
    answer(session, "ReqQryInvestorPositionDetail", "OnRspQryInvestorPositionDetail", [
        fill(td.CThostFtdcInvestorPositionDetailField(), InstrumentID="rb2601", Direction="0",
             OpenDate="20251127", Volume=2, OpenPrice=3000.0),
        fill(td.CThostFtdcInvestorPositionDetailField(), InstrumentID="rb2601", Direction="0",
             OpenDate="20251128", Volume=2, OpenPrice=3040.0),
    ], rsp)  # fmt: skip
    answer(session, "ReqQryInvestorPosition", "OnRspQryInvestorPosition", [
        fill(td.CThostFtdcInvestorPositionField(), InstrumentID="rb2601", ExchangeID="SHFE",
             PosiDirection="2", PositionDate="2", Position=4, YdPosition=4, TodayPosition=0,
             PreSettlementPrice=3050.0, UseMargin=11_000.0),
    ], rsp)  # fmt: skip
    account = fill(td.CThostFtdcTradingAccountField(), AccountID="u1", PreBalance=1_000_000.0,
                   Deposit=5_000.0, Withdraw=0.0, Balance=1_004_000.0, CurrMargin=11_000.0,
                   Available=993_000.0, CloseProfit=0.0, Commission=0.0)  # fmt: skip
    if limit_errors:
        rec = session.test["rec"]
        rec.codes["ReqQryTradingAccount"] = [-3, -2]  # per-second limit, too many waiting
        assert wait_until(lambda: session.step() or rec.names().count("ReqQryTradingAccount") == 3)
        _, _, rid = rec.last("ReqQryTradingAccount")  # the third attempt is sent ...
        session.spi.OnRspQryTradingAccount(
            None, rsp(90, "query not ready"), rid, True
        )  # ... "查询未就绪"
        assert session.state == "querying"
    answer(session, "ReqQryTradingAccount", "OnRspQryTradingAccount", [account], rsp)
