"""The library's SPI classes, subclassed only when the library has loaded (`gateways.ctp.load`),
each forwarding its callbacks to a plain Python owner (a gateway or a session), and the PUSH
socket the sessions share to the account bus.

The SPI callbacks run on the library's own threads: owners only map, append and return.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import zmq

from gateways.ctp import load
from infra.codec import encode_records


def make_field(module: Any, name: str, **values: Any) -> Any:
    """A request struct of the library (e.g. CThostFtdcInputOrderField) with its fields set."""
    f = getattr(module, name)()
    for key, value in values.items():
        setattr(f, key, value)
    return f


def rsp_error(info: Any) -> tuple[int, str]:
    """(ErrorID, ErrorMsg) of a CThostFtdcRspInfoField, (0, '') when there is none."""
    if info is None or int(info.ErrorID) == 0:
        return 0, ""
    return int(info.ErrorID), str(info.ErrorMsg)


def make_md_spi(owner: Any) -> Any:
    """An instance of a subclass of the library's CThostFtdcMdSpi that forwards to `owner`."""
    mdapi, _ = load()

    class MdSpi(mdapi.CThostFtdcMdSpi):  # type: ignore[misc,name-defined]
        def OnFrontConnected(self) -> None:
            owner.on_front_connected()

        def OnFrontDisconnected(self, nReason: int) -> None:
            owner.on_front_disconnected(nReason)

        def OnRspUserLogin(
            self, pRspUserLogin: Any, pRspInfo: Any, nRequestID: int, bIsLast: bool
        ) -> None:
            owner.on_login(pRspUserLogin, pRspInfo)

        def OnRspSubMarketData(
            self, pSpecificInstrument: Any, pRspInfo: Any, nRequestID: int, bIsLast: bool
        ) -> None:
            owner.on_subscribed(pSpecificInstrument, pRspInfo)

        def OnRspError(self, pRspInfo: Any, nRequestID: int, bIsLast: bool) -> None:
            owner.on_error(pRspInfo)

        def OnRtnDepthMarketData(self, pDepthMarketData: Any) -> None:
            owner.on_depth(pDepthMarketData)

    return MdSpi()


_CALLBACKS = {  # SPI method -> (owner method, argument names)
    "OnRspAuthenticate": "on_authenticate",
    "OnRspUserLogin": "on_login",
    "OnRspSettlementInfoConfirm": "on_confirmed",
    "OnRspQryTradingAccount": "on_query",
    "OnRspQryInvestorPosition": "on_query",
    "OnRspQryInvestorPositionDetail": "on_query",
    "OnRspQryInstrument": "on_query",
    "OnRspQryInstrumentMarginRate": "on_query",
    "OnRspQryInstrumentCommissionRate": "on_query",
}


def make_trader_spi(owner: Any) -> Any:
    """An instance of a subclass of the library's CThostFtdcTraderSpi forwarding to `owner`."""
    _, tdapi = load()

    def rsp(method: str) -> Callable[..., None]:
        def call(self: Any, data: Any, info: Any, request_id: int, last: bool) -> None:
            getattr(owner, method)(data, info, request_id, last)

        return call

    body: dict[str, Any] = {name: rsp(method) for name, method in _CALLBACKS.items()}
    body.update(
        OnFrontConnected=lambda self: owner.on_front_connected(),
        OnFrontDisconnected=lambda self, reason: owner.on_front_disconnected(reason),
        OnRtnTrade=lambda self, trade: owner.on_trade(trade),
        OnRtnOrder=lambda self, order: owner.on_order(order),
        OnRspOrderInsert=lambda self, order, info, rid, last: owner.on_order_refused(order, info),
        OnErrRtnOrderInsert=lambda self, order, info: owner.on_order_refused(order, info),
        OnRspError=lambda self, info, rid, last: owner.on_error(info, rid),
    )
    cls = type("TraderSpi", (tdapi.CThostFtdcTraderSpi,), body)
    return cls()


class BusPush:
    """A PUSH socket to the account bus's inbound PULL, shared by every session of a process."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._sock = zmq.Context.instance().socket(zmq.PUSH)
        self._sock.setsockopt(zmq.LINGER, 2000)
        self._sock.connect(endpoint)
        self._lock = threading.Lock()
        self.sent = 0

    def __call__(self, records: list[dict[str, Any]]) -> None:
        if records:
            with self._lock:
                self._sock.send(encode_records("account_events", records))
                self.sent += len(records)

    def close(self) -> None:
        self._sock.close(linger=1000)
