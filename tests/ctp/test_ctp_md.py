"""CTP market data: real depth structs through the gateway's MdSpi, asserted on the tick frames
that reach a real ZeroMQ SUB socket (the MarketFeed's side of the wire)."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pytest
import zmq

from gateways.ctp.config import MdConfig
from gateways.ctp.mapping import BEIJING, tick_days, tick_row
from gateways.ctp.md import CtpMarketGateway
from infra.codec import decode_ticks
from tests.ctp.conftest import fill
from tests.zmq_util import free_tcp_endpoint, wait_until

DBL_MAX = 1.7976931348623157e308
EXCHANGES = {"rb2601": "SHFE", "m2601": "DCE", "SR601": "CZCE", "au2602": "SHFE"}


def depth(md, **values):
    base = dict(
        InstrumentID="rb2601", ExchangeID="", TradingDay="20251201", ActionDay="20251201",
        UpdateTime="09:15:00", UpdateMillisec=0, LastPrice=3100.0, Volume=10, OpenInterest=500.0,
        BidPrice1=3099.0, AskPrice1=3101.0, UpperLimitPrice=3255.0, LowerLimitPrice=2945.0,
        PreSettlementPrice=3100.0,
    )  # fmt: skip
    base.update(values)
    return fill(md.CThostFtdcDepthMarketDataField(), **base)


def bj(y, mo, d, h, mi, s=0.0):
    return datetime(y, mo, d, h, mi, tzinfo=BEIJING).timestamp() + s


@pytest.fixture
def gateway(apis, tmp_path):
    # one front: with several, the library's Release() waits ~5 s for its reconnect cycle
    cfg = MdConfig(fronts=("tcp://127.0.0.1:1",), instruments=("rb2601",),
                   batch_ms=10, reconnect_after_s=30)  # fmt: skip
    gw = CtpMarketGateway(cfg, free_tcp_endpoint(), tmp_path, exchange_of=EXCHANGES.get)
    gw.start(connect=True)  # a real MdApi on an unreachable front: must not hang
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"T")
    sub.connect(gw.pub_endpoint)
    md, _ = apis
    # PUB drops frames until the subscription has arrived: send probes until one comes through.
    assert wait_until(lambda: _probe(gw, sub, md), timeout=5)
    while sub.poll(50):
        sub.recv_multipart()
    yield gw, sub
    sub.close(linger=0)
    gw.stop()


def _probe(gw, sub, md) -> bool:
    gw.spi.OnRtnDepthMarketData(depth(md))
    gw.flush()
    return bool(sub.poll(20))


def frames(sub, n_ticks, timeout=5.0):
    got = []
    wait_until(lambda: _drain(sub, got) >= n_ticks, timeout=timeout)
    return got


def _drain(sub, got) -> int:
    while sub.poll(0):
        topic, payload = sub.recv_multipart()
        assert topic == b"T"
        got.append(decode_ticks(payload))
    return sum(len(b) for b in got)


def test_night_session_midnight_and_sentinels_reach_the_feed(apis, gateway):
    md, _ = apis
    gw, sub = gateway
    snaps = [
        # SHFE Friday night: TradingDay is Monday, ActionDay the calendar day (both right)
        depth(md, InstrumentID="au2602", TradingDay="20251201", ActionDay="20251128",
              UpdateTime="21:00:00", UpdateMillisec=500, LastPrice=940.5),
        # SHFE after midnight: ActionDay is Saturday
        depth(md, InstrumentID="au2602", TradingDay="20251201", ActionDay="20251129",
              UpdateTime="00:30:01", UpdateMillisec=250, LastPrice=941.0),
        # DCE night: ActionDay wrongly equals TradingDay (Monday) -> Friday evening
        depth(md, InstrumentID="m2601", TradingDay="20251201", ActionDay="20251201",
              UpdateTime="21:05:00", LastPrice=2900.0),
        # CZCE night: TradingDay wrongly the calendar day; ActionDay right
        depth(md, InstrumentID="SR601", TradingDay="20251128", ActionDay="20251128",
              UpdateTime="21:10:00", LastPrice=5500.0),
        # day session with DBL_MAX in every empty price field and 0 bid
        depth(md, UpdateTime="09:15:03", UpdateMillisec=999, BidPrice1=0.0, AskPrice1=DBL_MAX,
              UpperLimitPrice=DBL_MAX, LowerLimitPrice=DBL_MAX, PreSettlementPrice=DBL_MAX),
        # negative prices are prices
        depth(md, InstrumentID="sc2605", ExchangeID="INE", UpdateTime="10:00:00",
              LastPrice=-37.63, LowerLimitPrice=-50.0, UpperLimitPrice=DBL_MAX),
    ]  # fmt: skip
    for snap in snaps:
        gw.spi.OnRtnDepthMarketData(snap)
    got = frames(sub, len(snaps))
    names = [n for b in got for n in b.names()]
    assert names == ["au2602", "au2602", "m2601", "SR601", "rb2601", "sc2605"]
    ts = np.concatenate([b.exchange_ts for b in got])
    assert ts[0] == pytest.approx(bj(2025, 11, 28, 21, 0, 0.5))
    assert ts[1] == pytest.approx(bj(2025, 11, 29, 0, 30, 1.25))
    assert ts[2] == pytest.approx(bj(2025, 11, 28, 21, 5))
    assert ts[3] == pytest.approx(bj(2025, 11, 28, 21, 10))
    assert ts[4] == pytest.approx(bj(2025, 12, 1, 9, 15, 3.999))
    day = got[-1] if len(got) == 1 else None
    cols = {k: np.concatenate([getattr(b, k) for b in got]) for k in
            ("last", "bid", "ask", "upper_limit", "lower_limit", "pre_settlement")}  # fmt: skip
    assert math.isnan(cols["bid"][4]) and math.isnan(cols["ask"][4])
    assert all(math.isnan(cols[k][4]) for k in ("upper_limit", "lower_limit", "pre_settlement"))
    assert cols["upper_limit"][0] == 3255.0 and cols["pre_settlement"][0] == 3100.0
    assert cols["last"][5] == -37.63 and cols["lower_limit"][5] == -50.0
    assert math.isnan(cols["upper_limit"][5])
    assert not np.any(cols["last"] > 1e300), day
    assert gw.stats["bad_snapshots"] == 0


def test_trading_day_per_exchange(apis):
    md, _ = apis
    # CZCE night: the trading day is the next weekday (Friday night -> Monday)
    _, tday = tick_row(depth(md, InstrumentID="SR601", TradingDay="20251128",
                             ActionDay="20251128", UpdateTime="22:00:00"), "CZCE")  # fmt: skip
    assert tday == date(2025, 12, 1)
    # DCE: TradingDay is right at night
    _, tday = tick_row(depth(md, InstrumentID="m2601", TradingDay="20251201",
                             ActionDay="20251201", UpdateTime="22:00:00"), "DCE")  # fmt: skip
    assert tday == date(2025, 12, 1)
    # exchange unknown, days agree at night after midnight: fixed the DCE way (Saturday 01:00)
    cal, tday = tick_days("20251201", "20251201", 3600.0, "")
    assert (cal, tday) == (date(2025, 11, 29), date(2025, 12, 1))
    # a Tuesday night session: Tuesday evening, Wednesday trading day
    cal, tday = tick_days("20251203", "20251202", 21 * 3600.0, "SHFE")
    assert (cal, tday) == (date(2025, 12, 2), date(2025, 12, 3))


def test_bad_snapshots_are_counted_and_quarantined_the_rest_goes_on(apis, gateway):
    md, _ = apis
    gw, sub = gateway
    bad = [
        depth(md, LastPrice=DBL_MAX),
        depth(md, InstrumentID=""),
        depth(md, UpdateTime="25:00:00"),
        depth(md, TradingDay="20251341", ActionDay=""),
    ]
    for snap in bad:
        gw.spi.OnRtnDepthMarketData(snap)
    # an instrument the contract table does not know, ExchangeID empty: still a tick
    gw.spi.OnRtnDepthMarketData(depth(md, InstrumentID="zz2601", LastPrice=3111.0))
    got = frames(sub, 1)
    assert [float(v) for b in got for v in b.last] == [3111.0]
    assert got[0].names() == ["zz2601"]
    assert gw.stats["bad_snapshots"] == 4
    reasons = [q["reason"] for q in gw.quarantine]
    assert "LastPrice empty" in reasons[0]
    assert reasons[1] == "no InstrumentID"
    assert "UpdateTime '25:00:00'" in reasons[2]
    assert "TradingDay '20251341' is not YYYYMMDD" in reasons[3]


def test_disconnect_reconnect_login_failure_and_resubscribe(apis, gateway, rsp):
    md, _ = apis
    gw, _sub = gateway
    gw.spi.OnFrontConnected()
    login = fill(md.CThostFtdcRspUserLoginField(), TradingDay="20251201", FrontID=1, SessionID=7)
    gw.spi.OnRspUserLogin(login, rsp(3, "invalid login"), 1, True)
    assert not gw.logged_in and gw.stats["login_failures"] == 1
    assert "login refused: 3 invalid login" in gw.stats["last_error"]
    gw.spi.OnRspUserLogin(login, rsp(), 2, True)
    assert gw.logged_in and gw.stats["logins"] == 1
    assert gw.stats["subscribed"] == 1
    gw.spi.OnFrontDisconnected(0x1001)
    assert not gw.connected and not gw.logged_in and gw.stats["disconnects"] == 1
    gw.subscribe(["m2601", "rb2601"])  # held by an account; subscribed at the next login
    gw.spi.OnFrontConnected()
    gw.spi.OnRspUserLogin(login, rsp(), 3, True)
    assert gw.stats["connects"] == 2 and gw.stats["logins"] == 2
    assert gw.instruments == {"rb2601", "m2601"} and gw.stats["subscribed"] == 3


def test_no_front_answering_recreates_the_api_on_the_next_front(apis, tmp_path):
    cfg = MdConfig(fronts=("tcp://127.0.0.1:1", "tcp://127.0.0.1:2"), batch_ms=10,
                   reconnect_after_s=0.2, backoff_max_s=0.4)  # fmt: skip
    gw = CtpMarketGateway(cfg, free_tcp_endpoint(), tmp_path, exchange_of=EXCHANGES.get)
    gw.start(connect=True)
    try:
        assert wait_until(lambda: gw.stats["api_restarts"] >= 1, timeout=10)
        assert gw._front == 1  # the second front is registered first now
        assert gw._backoff == 0.4  # doubled (and capped at backoff_max_s)
    finally:
        gw.stop()
