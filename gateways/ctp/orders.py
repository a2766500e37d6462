"""Approved orders to CTP: the executor's order wire (`gateways.orders.bridge`) → ReqOrderInsert
on the investor's trading session, and CTP's order and trade callbacks → the executor's order
reports. Off by default (`[ctp.orders] enabled`); with `dry_run` it logs what it would send and
reports the order rejected with reason CTP_DRY_RUN, so nothing reaches an exchange by mistake.

Refs: the executor's order_ref (≤ 12 chars, unique forever) maps to CTP's (FrontID, SessionID,
OrderRef). The mapping is written to SQLite *before* ReqOrderInsert (outbox), and every ref in
the file is loaded at start as already used: a restarted router answers a re-sent order with
"duplicate" and never sends it twice. OrderRef grows past the session's MaxOrderRef (from the
login) and past every ref this router has used.

Offsets: "close_today" is CombOffsetFlag "3" only on SHFE and INE, which keep today's and
yesterday's lots apart; "close" is "1" (on SHFE/INE = yesterday's lots); elsewhere both are
"1" and the exchange closes by its own rule (`mapping.offset_flag`). A limit price of 0 is sent
as AnyPrice + IOC (market); exchanges that take no market orders refuse it and the refusal is
reported.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateways.ctp.mapping import ORDER_STATUS, offset_flag, order_key
from gateways.orders.bridge import BrokerBridge

log = logging.getLogger(__name__)


class RefStore:
    """order_ref ↔ (account, FrontID, SessionID, OrderRef), durable before anything is sent."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS refs (order_ref TEXT PRIMARY KEY, account_id TEXT,"
            " front_id INT, session_id INT, ctp_ref INT, exchange TEXT, status TEXT,"
            " filled REAL, order_json TEXT, ts REAL)"
        )
        self._lock = threading.Lock()

    def add(
        self, order: dict[str, Any], front: int, session: int, ctp_ref: int, exchange: str
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO refs VALUES (?,?,?,?,?,?,?,?,?,?)",
                (order["order_ref"], order["account_id"], front, session, ctp_ref, exchange,
                 "submitted", 0.0, json.dumps(order), time.time()),
            )  # fmt: skip

    def update(self, order_ref: str, status: str, filled: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE refs SET status=?, filled=? WHERE order_ref=?", (status, filled, order_ref)
            )

    def by_key(self, front: int, session: int, ctp_ref: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT order_ref, exchange, order_json, filled FROM refs"
                " WHERE front_id=? AND session_id=? AND ctp_ref=?",
                (front, session, ctp_ref),
            ).fetchone()
        if row is None:
            return None
        return {
            "order_ref": row[0],
            "exchange": row[1],
            "order": json.loads(row[2]),
            "filled": row[3],
        }

    def by_ref(self, order_ref: str) -> tuple[int, int, int, str] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT front_id, session_id, ctp_ref, exchange FROM refs WHERE order_ref=?",
                (order_ref,),
            ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]), str(row[3]))

    def max_ref(self, account_id: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(ctp_ref) FROM refs WHERE account_id=?", (account_id,)
            ).fetchone()
        return int(row[0] or 0)

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT order_json, status, filled FROM refs").fetchall()
        return [{**json.loads(j), "status": s, "filled": f} for j, s, f in rows]

    def close(self) -> None:
        self._db.close()


class CtpOrderRouter(BrokerBridge):
    """The executing side of the order bridge, on the CTP trading sessions of this process."""

    def __init__(
        self,
        order_endpoint: str,
        reports_endpoint: str,
        sessions: dict[str, Any],
        refs_path: str | Path,
        *,
        dry_run: bool = True,
        exchange_of: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(order_endpoint, reports_endpoint)
        self.sessions = sessions  # account_id (InvestorID) -> TraderSession
        self.store = RefStore(refs_path)
        self.dry_run = dry_run
        self.exchange_of = exchange_of or (lambda _i: "")
        self.would_send: list[dict[str, Any]] = []  # dry run: what would have gone out
        self._ref_lock = threading.Lock()
        self._next_ref: dict[str, int] = {}
        for rec in self.store.all():  # refs used before a restart are used forever
            self.latest[rec["order_ref"]] = {**rec}
        for session in sessions.values():
            session.order_listener = self

    # -- orders in -------------------------------------------------------------------------
    def _allocate(self, session: Any) -> int:
        with self._ref_lock:
            base = max(session.max_order_ref, self.store.max_ref(session.account_id),
                       self._next_ref.get(session.account_id, 0))  # fmt: skip
            self._next_ref[session.account_id] = base + 1
            return base + 1

    def on_order(self, order: dict[str, Any]) -> None:
        session = self.sessions.get(order.get("account_id", ""))
        if session is None:
            self.report(order, "rejected", 0.0, reason="NO_CTP_SESSION for this account")
            return
        instrument = str(order["instrument"])
        exchange = session.instruments.get(instrument, {}).get("exchange") or self.exchange_of(
            instrument
        )
        limit = float(order.get("limit_price") or 0.0)
        try:
            flag = offset_flag(str(order["offset"]), exchange)
        except ValueError as exc:
            self.report(order, "rejected", 0.0, reason=str(exc))
            return
        fields = {
            "BrokerID": session.cfg.broker_id, "InvestorID": session.account_id,
            "UserID": session.cfg.user_id, "InstrumentID": instrument, "ExchangeID": exchange,
            "Direction": "0" if order["direction"] == "long" else "1", "CombOffsetFlag": flag,
            "CombHedgeFlag": "1", "LimitPrice": limit, "VolumeTotalOriginal": int(order["volume"]),
            "OrderPriceType": "2" if limit else "1", "TimeCondition": "3" if limit else "1",
            "VolumeCondition": "1", "MinVolume": 1, "ContingentCondition": "1",
            "ForceCloseReason": "0", "IsAutoSuspend": 0, "UserForceClose": 0,
        }  # fmt: skip
        if self.dry_run:
            self.would_send.append({"order_ref": order["order_ref"], **fields})
            log.warning("CTP dry run: would send ReqOrderInsert %s", fields)
            self.report(order, "rejected", 0.0, reason="CTP_DRY_RUN: nothing was sent")
            return
        if session.state != "ready":
            self.report(order, "rejected", 0.0, reason=f"CTP_SESSION_{session.state.upper()}")
            return
        ctp_ref = self._allocate(session)
        self.store.add(order, session.front_id, session.session_id, ctp_ref, exchange)
        req = session.field("CThostFtdcInputOrderField", OrderRef=str(ctp_ref), **fields)
        code = session.request("ReqOrderInsert", req)
        if code != 0:
            self.store.update(order["order_ref"], "rejected", 0.0)
            self.report(order, "rejected", 0.0, reason=f"ReqOrderInsert returned {code}")

    def on_cancel(self, order_ref: str) -> None:
        where = self.store.by_ref(order_ref)
        latest = self.latest.get(order_ref, {})
        session = self.sessions.get(latest.get("account_id", ""))
        if where is None or session is None:
            log.warning("CTP cancel of %s: no such order sent by this router", order_ref)
            return
        front, sess, ctp_ref, exchange = where
        req = session.field(
            "CThostFtdcInputOrderActionField", BrokerID=session.cfg.broker_id,
            InvestorID=session.account_id, UserID=session.cfg.user_id, FrontID=front,
            SessionID=sess, OrderRef=str(ctp_ref), ExchangeID=exchange,
            InstrumentID=str(latest.get("instrument", "")), ActionFlag="0",
        )  # fmt: skip
        if self.dry_run:
            log.warning("CTP dry run: would cancel %s", order_ref)
            return
        session.request("ReqOrderAction", req)

    # -- session callbacks (order_listener) ------------------------------------------------
    def on_session(self, session: Any) -> None:
        """A (re)login: OrderRef continues above the session's MaxOrderRef."""
        with self._ref_lock:
            self._next_ref[session.account_id] = max(
                self._next_ref.get(session.account_id, 0), session.max_order_ref
            )

    def _known(self, f: Any) -> dict[str, Any] | None:
        front, sess, ref = order_key(f)
        try:
            return self.store.by_key(front, sess, int(ref))
        except ValueError:
            return None

    def ref_for(self, _session: Any, key: tuple[int, int, str]) -> str:
        try:
            row = self.store.by_key(key[0], key[1], int(key[2]))
        except ValueError:
            return ""
        return row["order_ref"] if row else ""

    def on_ctp_order(self, _session: Any, f: Any) -> None:
        """OnRtnOrder of one of our orders → a report for every change."""
        known = self._known(f)
        if known is None:
            return  # an order placed elsewhere (another terminal): the account stream has it
        status = ORDER_STATUS.get(str(f.OrderStatus), "accepted")
        if str(f.OrderSubmitStatus) in ("4", "5", "6"):  # InsertRejected, Cancel/ModifyRejected
            status = "rejected" if str(f.OrderSubmitStatus) == "4" else status
        filled = float(f.VolumeTraded)
        self.store.update(known["order_ref"], status, filled)
        self.report(known["order"], status, filled, reason=str(f.StatusMsg))

    def on_ctp_trade(self, session: Any, f: Any, rec: dict[str, Any]) -> None:
        """OnRtnTrade → a fill report with the price (the executor checks fills against it)."""
        key = session.order_key_by_sys_id(str(f.ExchangeID), str(f.OrderSysID))
        known = self.store.by_key(key[0], key[1], int(key[2])) if key else None
        if known is None:
            return
        order = known["order"]
        ref = known["order_ref"]
        filled = float(self.latest.get(ref, {}).get("filled", 0.0)) + float(f.Volume)
        status = "filled" if filled >= float(order["volume"]) - 1e-9 else "partially_filled"
        self.store.update(ref, status, filled)
        self.report(order, status, filled, price=float(f.Price), trade_id=rec["trade_id"])

    def on_ctp_refused(self, _session: Any, f: Any, code: int, msg: str) -> None:
        known = self._known(f) if hasattr(f, "FrontID") else None
        if known is None and str(getattr(f, "OrderRef", "")).strip():
            # OnRspOrderInsert carries no FrontID/SessionID: it is this session's own ref
            try:
                known = self.store.by_key(
                    _session.front_id, _session.session_id, int(str(f.OrderRef))
                )
            except ValueError:
                known = None
        if known is None:
            return
        self.store.update(known["order_ref"], "rejected", 0.0)
        self.report(known["order"], "rejected", 0.0, reason=f"CTP {code} {msg}")

    def stop(self) -> None:
        super().stop()
        self.store.close()
