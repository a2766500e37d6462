"""The order bridge: how fengkong's orders reach whoever executes them, and how fills come back.

One wire format for the simulated exchange (`sim_gateway`) and for a broker's own process (a CTP
or vn.py program that owns the trading session), so swapping one for the other is a config change.

Sockets (ZeroMQ, msgpack frames from `infra.codec.encode_records`):

    fengkong Executor  PUSH ──connect──▶ PULL  (bound)  executing process   orders endpoint
    fengkong Executor  SUB  ──connect──▶ PUB   (bound)  executing process   reports endpoint

A frame is msgpack of {"v": 1, "kind": K, "sent_ts": epoch s, "records": [map, …]}.

Inbound, kind "orders"; each record is one of
- an order: {order_ref: str (≤ 12 chars, unique forever; CTP OrderRef), proposal_id, account_id
  (CTP InvestorID), instrument (InstrumentID), direction "long" (buy, THOST_FTDC_D_Buy) |
  "short" (sell), offset "open" | "close" | "close_today" (CombOffsetFlag 0 / 1 / 3),
  volume: whole lots (VolumeTotalOriginal), limit_price: float, 0 = at market (LimitPrice),
  created_ts}
- {type: "cancel", order_ref}                      (ReqOrderAction)
- {type: "query", order_ref}                       (ReqQryOrder: answer the latest report)
- {type: "trading_state", account_id, state: "REDUCING" | "ACTIVE"}: freeze or free opening;
  while REDUCING, an order with offset "open" for that account is rejected.

Outbound, topic frame b"R" then kind "order_reports"; each record is
{order_ref, proposal_id, account_id, instrument, status, filled (cumulative lots), remaining,
price (last fill price, 0 when none), reason, ts}, status one of accepted, partially_filled,
filled, cancelled, rejected, duplicate (order_ref already used: nothing was done), unknown (a
query for a ref never seen), trading_state (with "state"). Fills also reach the account source
as trades (`gateways.accounts.bus`), the way a broker's trade stream would.

Rules a broker process must keep: refuse a reused order_ref with "duplicate" and never execute
it twice; answer every query; publish a report for every change of an order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from infra.codec import CodecError, decode_records, encode_records

REPORT_TOPIC = b"R"
ORDER_FIELDS = (
    "order_ref",
    "proposal_id",
    "account_id",
    "instrument",
    "direction",
    "offset",
    "volume",
    "limit_price",
    "created_ts",
)


class BridgeClient:
    """The Executor's side: PUSH orders and commands, SUB reports on a thread of its own."""

    def __init__(
        self, order_endpoint: str, reports_endpoint: str, on_reports: Callable[[list[dict]], None]
    ) -> None:
        self._ctx = zmq.Context.instance()
        self._push = self._ctx.socket(zmq.PUSH)
        self._push.setsockopt(zmq.LINGER, 1000)
        self._push.connect(order_endpoint)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._on_reports = on_reports
        self.bad_frames = 0
        self._thread = threading.Thread(
            target=self._loop, args=(reports_endpoint,), name="order-reports", daemon=True
        )
        self._thread.start()

    def send(self, records: list[dict[str, Any]]) -> None:
        if records:
            with self._lock:
                self._push.send(encode_records("orders", records))

    def _loop(self, endpoint: str) -> None:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, REPORT_TOPIC)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        sock.connect(endpoint)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(100):
                    continue
                try:
                    _topic, payload = sock.recv_multipart()
                    _kind, reports = decode_records(payload, "order_reports")
                except (ValueError, CodecError):
                    self.bad_frames += 1
                    continue
                self._on_reports(reports)
        finally:
            sock.close(linger=0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._push.close(linger=500)


def wire_order(order: dict[str, Any]) -> dict[str, Any]:
    """Only the documented fields go on the wire (the journal keeps the reasons)."""
    return {k: order[k] for k in ORDER_FIELDS}


class BrokerBridge:
    """The executing side, for a broker's process: bind, decode, call the handlers, report.

    Subclass it and implement `on_order`, `on_cancel` (e.g. with vn.py's `send_order` /
    `cancel_order` of a CTP gateway); call `report(...)` from the broker's callbacks. Queries,
    duplicates and trading states are handled here from what `report` has seen.
    """

    def __init__(self, order_endpoint: str, reports_endpoint: str) -> None:
        ctx = zmq.Context.instance()
        self._pull = ctx.socket(zmq.PULL)
        self._pull.bind(order_endpoint)
        self._pub = ctx.socket(zmq.PUB)
        self._pub.bind(reports_endpoint)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.latest: dict[str, dict[str, Any]] = {}
        self.reducing: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="broker-bridge", daemon=True)

    def start(self) -> BrokerBridge:
        self._thread.start()
        return self

    def on_order(self, order: dict[str, Any]) -> None:
        raise NotImplementedError

    def on_cancel(self, order_ref: str) -> None:
        raise NotImplementedError

    def report(self, order: dict[str, Any], status: str, filled: float, **extra: Any) -> None:
        rec = {
            "order_ref": order.get("order_ref", ""),
            "proposal_id": order.get("proposal_id", ""),
            "account_id": order.get("account_id", ""),
            "instrument": order.get("instrument", ""),
            "status": status,
            "filled": filled,
            "remaining": float(order.get("volume") or 0) - filled,
            "price": 0.0,
            "reason": "",
            "ts": time.time(),
            **extra,
        }
        with self._lock:
            if rec["order_ref"] and status not in ("duplicate", "unknown"):
                self.latest[rec["order_ref"]] = rec
            self._pub.send_multipart([REPORT_TOPIC, encode_records("order_reports", [rec])])

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._pull, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                _kind, records = decode_records(self._pull.recv(), "orders")
            except CodecError:
                continue
            for rec in records:
                self._dispatch(rec)

    def _dispatch(self, rec: dict[str, Any]) -> None:
        kind, ref = rec.get("type"), rec.get("order_ref", "")
        if kind == "cancel":
            self.on_cancel(ref)
        elif kind == "query":
            latest = self.latest.get(ref)
            if latest:
                self.report(latest, latest["status"], latest["filled"], query=True)
            else:
                self.report(rec, "unknown", 0.0, query=True)
        elif kind == "trading_state":
            state = rec.get("state")
            (self.reducing.add if state == "REDUCING" else self.reducing.discard)(
                rec.get("account_id", "")
            )
            self.report(rec, "trading_state", 0.0, state=state)
        elif ref in self.latest:
            self.report(rec, "duplicate", 0.0, reason=f"order_ref {ref} already used")
        elif rec.get("offset") == "open" and rec.get("account_id") in self.reducing:
            self.report(rec, "rejected", 0.0, reason="TRADING_STATE_REDUCING")
        else:
            self.latest[ref] = {**rec, "status": "submitted", "filled": 0.0}
            self.on_order(rec)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self._pull.close(linger=0)
        self._pub.close(linger=0)
