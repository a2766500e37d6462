"""The order bridge: how fengkong's orders reach whoever executes them, and how fills come back.

One wire format for the simulated exchange (`gateways.sim.order_gateway`) and for a broker's own process (a CTP
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

import time
from collections.abc import Callable
from typing import Any

import zmq

from gateways.zmq_service import ZmqService
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


class BridgeClient(ZmqService):
    """The Executor's side: PUSH orders and commands, SUB reports on a thread of its own."""

    thread_name = "order-reports"
    poll_ms = 100
    join_timeout_s = 2.0

    def __init__(
        self, order_endpoint: str, reports_endpoint: str, on_reports: Callable[[list[dict]], None]
    ) -> None:
        super().__init__()
        self.order_endpoint, self.reports_endpoint = order_endpoint, reports_endpoint
        self._on_reports = on_reports
        self.bad_frames = 0
        self.start()

    def _open(self) -> None:
        self._push = self.socket(zmq.PUSH, connect=[self.order_endpoint], linger=500)
        self.socket(
            zmq.SUB,
            subscribe=[REPORT_TOPIC],
            connect=[self.reports_endpoint],
            options={zmq.RCVHWM: 100_000},
            on_message=self._reports,
        )

    def send(self, records: list[dict[str, Any]]) -> None:
        if records:
            with self._send_lock:
                self._push.send(encode_records("orders", records))

    def _reports(self, parts: list[bytes]) -> None:
        _topic, payload = parts
        _kind, reports = decode_records(payload, "order_reports")
        self._on_reports(reports)

    def on_bad_message(self, parts: list[bytes], exc: Exception) -> None:
        if isinstance(exc, ValueError | CodecError):
            self.bad_frames += 1
        else:
            super().on_bad_message(parts, exc)

    def close(self) -> None:
        self.stop()


def wire_order(order: dict[str, Any]) -> dict[str, Any]:
    """Only the documented fields go on the wire (the journal keeps the reasons)."""
    return {k: order[k] for k in ORDER_FIELDS}


class BrokerBridge(ZmqService):
    """The executing side, for a broker's process: bind, decode, call the handlers, report.

    Subclass it and implement `on_order`, `on_cancel` (e.g. with vn.py's `send_order` /
    `cancel_order` of a CTP gateway); call `report(...)` from the broker's callbacks. Queries,
    duplicates and trading states are handled here from what `report` has seen.
    """

    thread_name = "broker-bridge"
    poll_ms = 100
    join_timeout_s = 2.0

    def __init__(self, order_endpoint: str, reports_endpoint: str) -> None:
        super().__init__()
        self.order_endpoint, self.reports_endpoint = order_endpoint, reports_endpoint
        self.latest: dict[str, dict[str, Any]] = {}
        self.reducing: set[str] = set()
        self._held: list[dict[str, Any]] | None = None  # reports of the frame being answered
        self.open()  # bind now: a taken port fails the constructor, not the thread

    def _open(self) -> None:
        self._pull = self.socket(zmq.PULL, bind=self.order_endpoint, on_message=self._orders)
        self._pub = self.socket(zmq.PUB, bind=self.reports_endpoint)

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
        with self._send_lock:
            if rec["order_ref"] and status not in ("duplicate", "unknown"):
                self.latest[rec["order_ref"]] = rec
            if self._held is not None:  # answering a frame: its reports leave together
                self._held.append(rec)
            else:
                self._pub.send_multipart([REPORT_TOPIC, encode_records("order_reports", [rec])])

    def _orders(self, parts: list[bytes]) -> None:
        try:
            _kind, records = decode_records(parts[-1], "orders")
        except CodecError:
            return
        # The answers to one frame go out as one frame (as the simulated gateway does), so a
        # client sees a batch's duplicates and query answers together, never half of them.
        with self._send_lock:
            self._held = []
        try:
            for rec in records:
                self._dispatch(rec)
        finally:
            with self._send_lock:
                held, self._held = self._held, None
                if held:
                    self._pub.send_multipart([REPORT_TOPIC, encode_records("order_reports", held)])

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
