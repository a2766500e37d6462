"""CTP trading sessions: one TraderApi per investor login, many per process.

A session walks connect → authenticate (AppID/AuthCode, 看穿式监管) → login → confirm the
settlement bill → initial queries (trading account, positions, position details, instruments,
the investor's margin and commission rates), paced by `queries.QueryQueue` → publishes the
account's start-of-day snapshot on the account bus → streams `OnRtnTrade` / `OnRtnOrder` as
`trade` / `order` / `cancel` records (the private topic is subscribed with RESTART, so the day's
trades replay onto yesterday's lots: `mapping.snapshot_record`); trades before it are held.

Every `reconcile_s` it asks CTP for the trading account and positions again and compares them
with fengkong's own figures (`own_view(account_id)`, the shard's view); a drift beyond the
tolerances becomes a `RiskEvent` "account.reconcile_drift" handed to `on_events` — the drift
itself is a risk signal (a missed trade, a wrong rate, a transfer we did not see).

Order callbacks also go to `order_listener` (the order router: the executor's order reports).
Credentials are read at login and never logged."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateways.ctp import load
from gateways.ctp.config import Credentials, InvestorConfig
from gateways.ctp.mapping import (
    account_figures,
    commission_of,
    order_key,
    order_record,
    position_row,
    product_of,
    snapshot_record,
    trade_record,
)
from gateways.ctp.queries import QueryQueue, reconcile
from gateways.ctp.session_data import (
    QUERIES,
    Fields,
    commission_rates,
    copy_fields,
    drift_events,
    instrument_specs,
    margin_markup,
    margin_rates,
    yd_open_prices,
)
from gateways.ctp.spi import make_field, make_trader_spi, rsp_error
from rules.model import RiskEvent

log = logging.getLogger(__name__)


class TraderSession:
    """One investor's TraderApi session: login chain, queries, streams, reconciliation."""

    def __init__(
        self,
        cfg: InvestorConfig,
        publish: Callable[[list[dict[str, Any]]], None],
        flow_dir: str | Path,
        *,
        credentials: Credentials | None = None,
        own_view: Callable[[str], dict[str, Any] | None] | None = None,
        on_events: Callable[[list[RiskEvent]], None] | None = None,
        on_instruments: Callable[[list[str]], None] | None = None,
        multiplier_of: Callable[[str], float] | None = None,
        tick_s: float = 0.05,
        send_request: Callable[[str, Any, int], int] | None = None,
    ) -> None:
        self.cfg = cfg
        self.account_id = cfg.account_id
        self.publish = publish
        self.flow_dir = Path(flow_dir) / f"td_{cfg.name}"
        self._credentials = credentials or Credentials()
        self.own_view = own_view
        self.on_events = on_events
        self.on_instruments = on_instruments
        self.multiplier_of = multiplier_of or (lambda _i: 1.0)
        self.order_listener: Any = None
        self.tick_s = tick_s
        self.send_request = send_request
        self.queries = QueryQueue(cfg.query_interval_s, cfg.query_retries)
        self.state = "new"  # connecting authenticating logging_in confirming querying ready failed
        self.stats: dict[str, Any] = {
            "connects": 0, "disconnects": 0, "login_failures": 0, "trades": 0, "orders": 0,
            "reconciles": 0, "drifts": 0, "bad_records": 0, "last_error": "",
        }  # fmt: skip
        self.front_id = self.session_id = self.max_order_ref = 0
        self.trading_day = ""
        self.figures: dict[str, float] = {}
        self.positions: list[dict[str, Any]] = []
        self.instruments: dict[str, dict[str, Any]] = {}
        self.margin_rates: dict[str, dict[str, float]] = {}
        self.commission_rates: dict[str, dict[str, float]] = {}
        self._yd_open: dict[tuple[str, str], float] = {}
        self._held: list[dict[str, Any]] | None = []  # trades before the snapshot; None after
        self._out: list[dict[str, Any]] = []
        self._seen_orders: dict[tuple[int, int, str], str] = {}  # key -> last status
        self._sys_ids: dict[tuple[str, str], tuple[int, int, str]] = {}
        self._lock = threading.RLock()
        self._stop, self._thread = threading.Event(), None
        self._next_reconcile = float("inf")
        self._ids = itertools.count(1)
        self.api: Any = None
        self.spi = make_trader_spi(self)
        self._td = load()[1]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, connect: bool = True, thread: bool = True) -> TraderSession:
        """Connect a new TraderApi; run the session's thread (else the owner calls step())."""
        if connect:
            self.flow_dir.mkdir(parents=True, exist_ok=True)  # the library crashes without it
            api = self._td.CThostFtdcTraderApi.CreateFtdcTraderApi(str(self.flow_dir) + "/")
            api.RegisterSpi(self.spi)
            api.SubscribePrivateTopic(self._td.THOST_TERT_RESTART)
            api.SubscribePublicTopic(self._td.THOST_TERT_QUICK)
            for front in self.cfg.fronts:
                api.RegisterFront(front)
            self.api = api
            self.state = "connecting"
            api.Init()
        self._stop.clear()
        if thread:
            self._thread = threading.Thread(
                target=self._loop, name=f"ctp-td-{self.cfg.name}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        api, self.api = self.api, None
        if api is not None:
            api.RegisterSpi(None)
            api.Release()
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.step()

    def step(self) -> None:
        """One turn of the session's own thread: pace queries, reconcile when due, publish."""
        with self._lock:
            self.queries.pump()
            if self.state == "ready" and time.monotonic() >= self._next_reconcile:
                self.request_reconcile()
        self.flush()

    def flush(self) -> None:
        with self._lock:
            out, self._out = self._out, []
        self.publish(out)

    def request(self, name: str, req: Any, rid: int | None = None) -> int:
        """api.<name>(req, rid), for the session and the router (or `send_request`: tests)."""
        rid = next(self._ids) if rid is None else rid
        if self.send_request is not None:
            return int(self.send_request(name, req, rid))
        return -1 if self.api is None else int(getattr(self.api, name)(req, rid))

    def field(self, name: str, **values: Any) -> Any:
        """A CTP request struct of this session's API module (the order router builds with it)."""
        return make_field(self._td, name, **values)

    def order_key_by_sys_id(self, exchange: str, sys_id: str) -> tuple[int, int, str] | None:
        """(FrontID, SessionID, OrderRef) of the order the exchange numbered `sys_id`."""
        return self._sys_ids.get((exchange, sys_id.strip()))

    def _fail(self, what: str, info: Any) -> bool:
        code, msg = rsp_error(info)
        if code:
            self.stats["last_error"] = f"{what}: {code} {msg}"
            log.error("CTP %s %s refused: %s %s", self.cfg.name, what, code, msg)
        return bool(code)

    # -- session chain ---------------------------------------------------------------------
    def on_front_connected(self) -> None:
        self.stats["connects"] += 1
        if self.cfg.app_id:
            self.state = "authenticating"
            req = self.field("CThostFtdcReqAuthenticateField", BrokerID=self.cfg.broker_id,
                              UserID=self.cfg.user_id, AppID=self.cfg.app_id,
                              AuthCode=self._credentials.auth_code)  # fmt: skip
            self.request("ReqAuthenticate", req)
        else:
            self._login()

    def on_front_disconnected(self, reason: int) -> None:
        with self._lock:
            self.stats["disconnects"] += 1
            self.stats["last_error"] = f"front disconnected (reason 0x{int(reason):04x})"
            self.state = "connecting"  # the API reconnects by itself; the chain starts again
            self.queries.clear()
            self._next_reconcile = float("inf")

    def on_authenticate(self, _data: Any, info: Any, _rid: int, _last: bool) -> None:
        if self._fail("authenticate", info):
            self.state = "failed"
            return
        self._login()

    def _login(self) -> None:
        self.state = "logging_in"
        req = self.field("CThostFtdcReqUserLoginField", BrokerID=self.cfg.broker_id,
                          UserID=self.cfg.user_id, Password=self._credentials.password)  # fmt: skip
        self.request("ReqUserLogin", req)

    def on_login(self, data: Any, info: Any, _rid: int, _last: bool) -> None:
        if self._fail("login", info):
            self.stats["login_failures"] += 1
            self.state = "failed"
            return
        self.front_id, self.session_id = int(data.FrontID), int(data.SessionID)
        self.max_order_ref = int(str(data.MaxOrderRef).strip() or 0)
        self.trading_day = str(data.TradingDay)
        self.state = "confirming"
        req = self.field("CThostFtdcSettlementInfoConfirmField", BrokerID=self.cfg.broker_id,
                          InvestorID=self.account_id)  # fmt: skip
        self.request("ReqSettlementInfoConfirm", req)
        if self.order_listener is not None:
            self.order_listener.on_session(self)

    def on_confirmed(self, _data: Any, info: Any, _rid: int, _last: bool) -> None:
        if self._fail("settlement confirm", info):
            self.state = "failed"
            return
        self.state = "querying"
        self.initial_queries()

    def _query(self, name: str) -> None:
        """Queue one of QUERIES (a second request of the same name while queued is dropped)."""
        req_name, field_name, extra, handler = QUERIES[name]
        ids = {"BrokerID": self.cfg.broker_id, "InvestorID": self.account_id}

        def send(rid: int) -> int:
            req = self.field(field_name, **({} if name == "instruments" else ids), **extra)
            return self.request(req_name, req, rid)

        self.queries.add(name, send, getattr(self, handler))

    def initial_queries(self) -> None:
        with self._lock:
            for name in QUERIES:
                self._query(name)

    def on_query(self, data: Any, info: Any, request_id: int, last: bool) -> None:
        with self._lock:
            self.queries.answer(request_id, copy_fields(data), *rsp_error(info), last)

    # -- query results ---------------------------------------------------------------------
    def _on_instruments(self, rows: list[Any]) -> None:
        self.instruments.update(instrument_specs(rows))

    def _on_margin_rates(self, rows: list[Any]) -> None:
        self.margin_rates.update(margin_rates(rows))

    def _on_commission_rates(self, rows: list[Any]) -> None:
        self.commission_rates.update(commission_rates(rows))

    def _on_details(self, rows: list[Any]) -> None:
        self._yd_open = yd_open_prices(rows, self.trading_day)

    def _on_positions(self, rows: list[Any]) -> None:
        self.positions = [position_row(Fields(r)) for r in rows]
        held = sorted({p["instrument"] for p in self.positions if p["position"] > 0})
        if held and self.on_instruments is not None:
            self.on_instruments(held)

    def _on_account(self, rows: list[Any]) -> None:
        if not rows:
            self.stats["last_error"] = "trading account query answered nothing"
            return
        self.figures = account_figures(Fields(rows[0]))
        first = self.state == "querying" and self._held is not None
        self.state = "ready" if self.state == "querying" else self.state
        if not first:  # a scheduled check, or a re-login: the stream went on, compare
            self._reconcile()
            return
        snap = snapshot_record(self.account_id, self.cfg.group_path, self.figures,
                               self.positions, self._yd_open)  # fmt: skip
        markup = margin_markup(self.margin_rates, self.instruments)  # the investor's rates
        self._out.append(snap if markup is None else {**snap, "margin_markup": markup})
        for rec in self._held or []:
            rec["commission"] = self.fee(rec)
            self._out.append(rec)
        self._held = None
        self._schedule_reconcile()

    # -- reconciliation --------------------------------------------------------------------
    def _schedule_reconcile(self) -> None:
        if self.cfg.reconcile_s > 0:
            self._next_reconcile = time.monotonic() + self.cfg.reconcile_s

    def request_reconcile(self) -> None:
        """Queue a positions and trading-account query; the answer is compared (paced)."""
        self._next_reconcile = float("inf")
        self._query("positions")
        self._query("trading_account")

    def _reconcile(self) -> None:
        self._schedule_reconcile()
        own = self.own_view(self.account_id) if self.own_view is not None else None
        self.stats["reconciles"] += 1
        if own is None:
            self.stats["last_error"] = "reconcile: fengkong has no figures for the account yet"
            return
        drifts = reconcile(self.figures, self.positions, own,
                           equity_tolerance=self.cfg.equity_tolerance,
                           margin_tolerance=self.cfg.margin_tolerance,
                           position_tolerance=self.cfg.position_tolerance)  # fmt: skip
        if not drifts:
            return
        self.stats["drifts"] += len(drifts)
        events = drift_events(self.account_id, drifts, self.cfg.name, self.trading_day, time.time())
        if self.on_events is not None:
            self.on_events(events)

    # -- streams ---------------------------------------------------------------------------
    def ref_of(self, f: Any) -> str:
        """The executor's order ref of a CTP order or trade, else 'ctp:<OrderRef>'."""
        key = self.order_key_by_sys_id(str(f.ExchangeID), str(f.OrderSysID))
        if key is None and hasattr(f, "FrontID"):
            key = order_key(f)
        if key is not None and self.order_listener is not None:
            ref = self.order_listener.ref_for(self, key)
            if ref:
                return ref
        return f"ctp:{str(f.OrderRef).strip()}"

    def fee(self, rec: dict[str, Any]) -> float:
        """Commission of a trade record from this investor's rates (instrument, else product)."""
        instrument = rec["instrument"]
        rates = self.commission_rates.get(instrument) or self.commission_rates.get(
            product_of(instrument)
        )
        spec = self.instruments.get(instrument, {})
        mult = spec.get("multiplier") or self.multiplier_of(instrument)
        return commission_of(rates, rec["offset"], rec["price"], rec["volume"], mult)

    def on_trade(self, f: Any) -> None:
        try:
            rec = trade_record(f, self.ref_of(f), 0.0)
        except (ValueError, KeyError) as exc:
            self.stats["bad_records"] += 1
            self.stats["last_error"] = f"trade: {exc}"
            return
        with self._lock:
            self.stats["trades"] += 1
            if self._held is not None:
                self._held.append(rec)  # fee when released: the rates are not known yet
            else:
                rec["commission"] = self.fee(rec)
                self._out.append(rec)
        if self.order_listener is not None:
            self.order_listener.on_ctp_trade(self, f, rec)

    def on_order(self, f: Any) -> None:
        key = order_key(f)
        status = str(f.OrderStatus)
        with self._lock:
            if str(f.OrderSysID).strip():
                self._sys_ids[(str(f.ExchangeID), str(f.OrderSysID).strip())] = key
            before = self._seen_orders.get(key)
            self._seen_orders[key] = status
            ref = self.ref_of(f)
            if before is None:
                self.stats["orders"] += 1
                self._out.append(order_record(f, ref, "order"))
            if status == "5" and before != "5":
                self._out.append(order_record(f, ref, "cancel"))
        if self.order_listener is not None:
            self.order_listener.on_ctp_order(self, f)

    def on_order_refused(self, f: Any, info: Any) -> None:
        if self.order_listener is not None and f is not None:
            self.order_listener.on_ctp_refused(self, f, *rsp_error(info))

    def on_error(self, info: Any, request_id: int) -> None:
        code, msg = rsp_error(info)
        self.stats["last_error"] = f"{code} {msg}"
        with self._lock:
            self.queries.answer(request_id, None, code or -1, msg, True)

    def view(self) -> dict[str, Any]:  # what `fengkong ctp status` shows: no credentials
        return {
            "name": self.cfg.name, "account_id": self.account_id, "state": self.state,
            "trading_day": self.trading_day, "figures": dict(self.figures),
            "positions": list(self.positions), "queries": dict(self.queries.stats),
            "instruments": len(self.instruments), "margin_rates": len(self.margin_rates),
            "commission_rates": len(self.commission_rates), **self.stats,
        }  # fmt: skip
