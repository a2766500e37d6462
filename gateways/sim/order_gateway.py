"""A simulated order gateway: takes orders, fills them against the simulated market, reports.

It behaves like an exchange where the risk system's actions can go wrong: a reused order_ref is
refused (CTP exchanges refuse a repeated OrderRef, which is why order ids are deterministic and a
retry must not create a second order), an unknown contract or a market without a price rejects,
and a contract locked at its limit cannot be traded out of — a sell at limit-down or a buy at
limit-up waits, unfilled, until the price leaves the limit. Fills become trade records on the
account bus, so positions change the way they would with a real broker.

Wire: it imitates the broker's side of the order bridge (`gateways.orders.bridge`, whose
`BrokerBridge` a real broker process runs):
- PULL (bound) `encode_records("orders", [...])`; an order is {order_ref, proposal_id,
  account_id, instrument, direction ("long" buys / "short" sells), offset, volume, limit_price
  (0 or None = at market), created_ts}; a cancel is {type: "cancel", order_ref}; a status query
  is {type: "query", order_ref} (answered with the order's latest report, or status "unknown");
  {type: "trading_state", account_id, state: "REDUCING" | "ACTIVE"} freezes or frees opening.
- SUB to the market endpoints, topic b"T" (tick frames): last price and limits per instrument.
- PUB (bound) `[b"R", encode_records("order_reports", [{order_ref, proposal_id, account_id,
  status, filled, remaining, price, reason, ts, instrument}])]`; status is one of accepted,
  partially_filled, filled, rejected, duplicate, cancelled; price is the fill price (0 when none).
- PUSH to the account bus inbound: one trade record per fill (see `gateways.accounts.bus`).
Every order_ref that arrives is remembered, whatever became of the order, so any reuse is refused.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from gateways.zmq_service import ZmqService
from infra.codec import CodecError, decode_records, decode_ticks, encode_records
from rules.contracts import ContractTable, UnknownContract, limit_prices

DIRECTIONS = ("long", "short")
OFFSETS = ("open", "close", "close_today")
QUARANTINE_SIZE = 1000


@dataclass(slots=True)
class _Working:
    order: dict[str, Any]
    volume: float
    filled: float = 0.0
    split: bool = False  # fill in two parts
    parts: int = 0

    @property
    def remaining(self) -> float:
        return self.volume - self.filled


class SimOrderGateway(ZmqService):
    """Order PULL, market SUB, report PUB, trade PUSH; one thread."""

    thread_name = "sim-order-gateway"

    def __init__(
        self,
        order_endpoint: str,
        reports_endpoint: str,
        market_endpoints: list[str],
        account_inbound_endpoint: str,
        table: ContractTable,
        *,
        partial_fill_prob: float = 0.0,
        reject_prob: float = 0.0,
        seed: int = 7,
        commission_per_lot: float = 2.0,
    ) -> None:
        super().__init__()
        self.order_endpoint = order_endpoint
        self.reports_endpoint = reports_endpoint
        self.market_endpoints = list(market_endpoints)
        self.account_inbound_endpoint = account_inbound_endpoint
        self.table = table
        self.partial_fill_prob = partial_fill_prob
        self.reject_prob = reject_prob
        self.commission_per_lot = commission_per_lot
        self._rng = np.random.default_rng(seed)
        self.stats: dict[str, int] = {
            "orders": 0,
            "fills": 0,
            "rejected": 0,
            "duplicates": 0,
            "cancelled": 0,
            "bad_frames": 0,
            "tick_batches": 0,
        }
        self.quarantine: deque[dict[str, Any]] = deque(maxlen=QUARANTINE_SIZE)
        self._last: dict[str, float] = {}
        self._limits: dict[str, tuple[float, float]] = {}  # instrument -> (upper, lower)
        self._seen: set[str] = set()
        self._latest: dict[str, dict[str, Any]] = {}  # order_ref -> its latest report
        self._halted: set[str] = set()
        self._reducing: set[str] = set()  # accounts in trading state REDUCING
        self._working: dict[str, _Working] = {}

    # -- lifecycle (ZmqService) ------------------------------------------------------------
    def _open(self) -> None:
        # Ticks first in each turn: an order that arrives with them meets the newest price.
        self.socket(
            zmq.SUB, subscribe=[b"T"], connect=self.market_endpoints, on_message=self._on_ticks
        )
        self._pull = self.socket(zmq.PULL, bind=self.order_endpoint, on_message=self._on_orders)
        self._pub = self.socket(zmq.PUB, bind=self.reports_endpoint)
        # Trades still queued for the bus get a moment to leave; the rest close at once.
        self._push = self.socket(zmq.PUSH, connect=[self.account_inbound_endpoint], linger=500)

    def working(self) -> list[str]:
        """order_refs accepted and not yet finished (a snapshot, for tests and tools)."""
        return list(self._working)

    def last_price(self, instrument: str) -> float | None:
        return self._last.get(instrument)

    def halt(self, instrument: str) -> None:
        """Trading halt (暂停交易): orders are accepted and wait, nothing matches until resume."""
        self._halted.add(instrument)

    def resume(self, instrument: str) -> None:
        self._halted.discard(instrument)

    def reducing(self) -> list[str]:
        """Accounts whose opening is frozen (trading state REDUCING)."""
        return sorted(self._reducing)

    def on_bad_message(self, parts: list[bytes], exc: Exception) -> None:
        self.stats["bad_frames"] += 1
        reason = str(exc) if isinstance(exc, CodecError) else f"{type(exc).__name__}: {exc}"
        self.quarantine.append({"reason": reason, "item": parts[-1][:200]})

    def _on_ticks(self, parts: list[bytes]) -> None:
        batch = decode_ticks(parts[-1])
        self.stats["tick_batches"] += 1
        names = batch.instruments
        for i, last, up, low, pre in zip(
            batch.instrument_idx.tolist(),
            batch.last.tolist(),
            batch.upper_limit.tolist(),
            batch.lower_limit.tolist(),
            batch.pre_settlement.tolist(),
            strict=True,
        ):
            if not (math.isfinite(last) and last > 0):
                continue
            name = names[i]
            self._last[name] = last
            if math.isfinite(up) and math.isfinite(low):
                self._limits[name] = (up, low)
            elif math.isfinite(pre) and name not in self._limits and name in self.table:
                spec = self.table.spec(name)
                upper, lower = limit_prices(pre, spec.limit_rate, spec.tick_size)
                self._limits[name] = (float(upper), float(lower))
        if self._working:
            reports: list[dict[str, Any]] = []
            for ref in list(self._working):
                self._try_fill(self._working[ref], reports)
            self._publish(reports)

    def _on_orders(self, parts: list[bytes]) -> None:
        _kind, records = decode_records(parts[-1], "orders")
        reports: list[dict[str, Any]] = []
        for record in records:
            kind = record.get("type")
            if kind == "cancel":
                self._cancel(record, reports)
            elif kind == "query":
                self._query(record, reports)
            elif kind == "trading_state":
                self._trading_state(record, reports)
            else:
                self._order(record, reports)
        self._publish(reports)

    def _query(self, record: dict[str, Any], reports: list[dict[str, Any]]) -> None:
        """Like CTP's ReqQryOrder: the latest report of an order_ref, or "unknown"."""
        ref = record.get("order_ref")
        latest = self._latest.get(ref) if isinstance(ref, str) else None
        if latest is not None:
            reports.append({**latest, "ts": time.time(), "query": True})
        else:
            reports.append({**self._report(record, "unknown", 0, 0), "query": True})

    def _trading_state(self, record: dict[str, Any], reports: list[dict[str, Any]]) -> None:
        account, state = record.get("account_id"), record.get("state")
        if not isinstance(account, str) or state not in ("REDUCING", "ACTIVE"):
            self.stats["bad_frames"] += 1
            self.quarantine.append({"reason": "bad trading_state command", "item": record})
            return
        if state == "REDUCING":
            self._reducing.add(account)
        else:
            self._reducing.discard(account)
        reports.append(
            {**self._report(record, "trading_state", 0, 0), "state": state, "order_ref": ""}
        )

    # -- order handling --------------------------------------------------------------------
    def _report(
        self,
        order: dict[str, Any],
        status: str,
        filled: float,
        remaining: float,
        price: float = 0.0,
        reason: str = "",
    ) -> dict[str, Any]:
        return {
            "order_ref": order.get("order_ref"),
            "proposal_id": order.get("proposal_id", ""),
            "account_id": order.get("account_id", ""),
            "instrument": order.get("instrument", ""),
            "status": status,
            "filled": filled,
            "remaining": remaining,
            "price": price,
            "reason": reason,
            "ts": time.time(),
        }

    def _order(self, order: dict[str, Any], reports: list[dict[str, Any]]) -> None:
        self.stats["orders"] += 1
        ref = order.get("order_ref")
        if not isinstance(ref, str) or not ref:
            self.stats["rejected"] += 1
            self.quarantine.append({"reason": "order without an order_ref", "item": order})
            return
        volume = order.get("volume")
        if ref in self._seen:
            self.stats["duplicates"] += 1
            reports.append(
                self._report(order, "duplicate", 0, 0, reason=f"order_ref {ref} already used")
            )
            return
        self._seen.add(ref)
        problem = self._problem(order)
        if problem is None and self.reject_prob > 0 and self._rng.random() < self.reject_prob:
            problem = "simulated exchange reject"
        if problem is not None:
            self.stats["rejected"] += 1
            remaining = float(volume) if isinstance(volume, int | float) else 0.0
            reports.append(self._report(order, "rejected", 0, remaining, reason=problem))
            return
        work = _Working(
            order=order,
            volume=float(order["volume"]),
            split=order["volume"] > 1 and self._rng.random() < self.partial_fill_prob,
        )
        self._working[ref] = work
        reports.append(self._report(order, "accepted", 0, work.volume))
        self._try_fill(work, reports)

    def _problem(self, order: dict[str, Any]) -> str | None:
        instrument = order.get("instrument")
        if order.get("direction") not in DIRECTIONS:
            return f"direction {order.get('direction')!r} not one of {DIRECTIONS}"
        if order.get("offset") not in OFFSETS:
            return f"offset {order.get('offset')!r} not one of {OFFSETS}"
        volume = order.get("volume")
        if isinstance(volume, bool) or not isinstance(volume, int | float) or not volume > 0:
            return f"volume {volume!r} must be a positive number"
        if volume != int(volume):
            return f"volume {volume!r} must be whole lots"
        limit = order.get("limit_price")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int | float) or not limit >= 0
        ):
            return f"limit_price {limit!r} must be a non-negative number"
        if not isinstance(order.get("account_id"), str) or not order["account_id"]:
            return "account_id missing"
        if not isinstance(instrument, str):
            return "instrument missing"
        try:
            self.table.spec(instrument)
        except UnknownContract as exc:
            return str(exc)
        if instrument not in self._last:
            return f"no market price for {instrument} yet"
        if order.get("offset") == "open" and order["account_id"] in self._reducing:
            return "TRADING_STATE_REDUCING: the account may only reduce"
        return None

    def _try_fill(self, work: _Working, reports: list[dict[str, Any]]) -> None:
        order = work.order
        instrument = order["instrument"]
        last = self._last.get(instrument)
        if last is None or instrument in self._halted:
            return
        upper, lower = self._limits.get(instrument, (math.inf, -math.inf))
        buy = order["direction"] == "long"
        limit = order.get("limit_price") or 0.0
        if buy and (last >= upper or (limit > 0 and last > limit)):
            return  # locked at limit-up, or the market is above the buyer's limit
        if not buy and (last <= lower or (limit > 0 and last < limit)):
            return
        qty = math.ceil(work.remaining / 2) if work.split and work.parts == 0 else work.remaining
        work.filled += qty
        work.parts += 1
        self.stats["fills"] += 1
        done = work.remaining <= 0
        status = "filled" if done else "partially_filled"
        reports.append(self._report(order, status, work.filled, work.remaining, price=last))
        if done:
            del self._working[order["order_ref"]]
        trade = {
            "type": "trade",
            "account_id": order.get("account_id", ""),
            "instrument": instrument,
            "direction": order["direction"],
            "offset": order["offset"],
            "volume": qty,
            "price": last,
            "commission": round(self.commission_per_lot * qty, 2),
            "trade_id": f"{order['order_ref']}#{work.parts}",
            "order_ref": order["order_ref"],
            "ts": time.time(),
        }
        self._push.send(encode_records("account_events", [trade]))

    def _cancel(self, record: dict[str, Any], reports: list[dict[str, Any]]) -> None:
        ref = record.get("order_ref")
        work = self._working.pop(ref, None) if isinstance(ref, str) else None
        if work is None:
            reports.append(
                self._report(
                    record, "rejected", 0, 0, reason="cancel: no working order with that order_ref"
                )
            )
            return
        self.stats["cancelled"] += 1
        reports.append(self._report(work.order, "cancelled", work.filled, work.remaining))

    def _publish(self, reports: list[dict[str, Any]]) -> None:
        for r in reports:
            if r.get("order_ref") and r["status"] not in ("duplicate", "unknown"):
                self._latest[r["order_ref"]] = r
        if reports:
            self._pub.send_multipart([b"R", encode_records("order_reports", reports)])
