"""What a trading session may ask CTP, and when: a paced query queue, and the reconciliation
of fengkong's own account figures against CTP's (对账).

CTP allows about one query per second per session. A `ReqQry*` call answers at once with a
return code: 0 sent, -1 network, -2 too many requests waiting, -3 more than allowed per second;
a query that was sent may still be answered with ErrorID 90 (查询未就绪，请稍后重试, "query not
ready, retry later"). The queue sends one query at a time, no faster than `interval_s`, and
puts a refused or not-ready query back at the head, up to `retries` times; a query whose answer
never comes is re-sent after `timeout_s`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RETRY_RETURN_CODES = (-2, -3)
NOT_READY_ERROR_IDS = (90,)  # CTP: 查询未就绪，请稍后重试


@dataclass
class Query:
    name: str
    send: Callable[[int], int]  # request id -> the ReqQry* return code
    on_done: Callable[[list[Any]], None]
    attempts: int = 0
    rows: list[Any] = field(default_factory=list)


class QueryQueue:
    def __init__(
        self,
        interval_s: float = 1.05,
        retries: int = 5,
        timeout_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.retries = retries
        self.timeout_s = timeout_s
        self.clock = clock
        self.pending: deque[Query] = deque()
        self.in_flight: dict[int, Query] = {}
        self.sent_at: dict[int, float] = {}
        self.stats: dict[str, int] = {
            "sent": 0,
            "refused": 0,
            "not_ready": 0,
            "failed": 0,
            "timeouts": 0,
        }
        self.last_error = ""
        self._next_at = 0.0
        self._request_id = 1000

    def add(
        self, name: str, send: Callable[[int], int], on_done: Callable[[list[Any]], None]
    ) -> None:
        if not any(q.name == name for q in self.pending) and not any(
            q.name == name for q in self.in_flight.values()
        ):
            self.pending.append(Query(name, send, on_done))

    def busy(self) -> bool:
        return bool(self.pending or self.in_flight)

    def _retry(self, q: Query, why: str) -> None:
        q.attempts += 1
        q.rows = []
        if q.attempts > self.retries:
            self.stats["failed"] += 1
            self.last_error = f"{q.name}: given up after {q.attempts} attempts ({why})"
            return
        self.pending.appendleft(q)

    def pump(self) -> str | None:
        """Send the next query when one is due; returns its name when one was sent."""
        now = self.clock()
        for rid, at in list(self.sent_at.items()):
            if now - at > self.timeout_s:
                self.stats["timeouts"] += 1
                self.sent_at.pop(rid)
                self._retry(self.in_flight.pop(rid), "no answer")
        if self.in_flight or not self.pending or now < self._next_at:
            return None
        q = self.pending.popleft()
        self._request_id += 1
        rid = self._request_id
        code = q.send(rid)
        self._next_at = now + self.interval_s
        if code in RETRY_RETURN_CODES:
            self.stats["refused"] += 1
            self._retry(q, f"return code {code}")
            return None
        if code != 0:  # -1: not connected; the login chain queues it again when it is
            q.rows = []
            self.pending.appendleft(q)
            self.last_error = f"{q.name}: return code {code} (not connected)"
            return None
        self.stats["sent"] += 1
        self.in_flight[rid] = q
        self.sent_at[rid] = now
        return q.name

    def answer(self, request_id: int, row: Any, error_id: int, error_msg: str, last: bool) -> None:
        """One OnRspQry* callback: rows gather until bIsLast, errors retry or give up."""
        q = self.in_flight.get(request_id)
        if q is None:
            return
        if error_id:
            self.in_flight.pop(request_id)
            self.sent_at.pop(request_id, None)
            if error_id in NOT_READY_ERROR_IDS:
                self.stats["not_ready"] += 1
                self._retry(q, f"ErrorID {error_id} {error_msg}")
            else:
                self.stats["failed"] += 1
                self.last_error = f"{q.name}: ErrorID {error_id} {error_msg}"
            return
        if row is not None:
            q.rows.append(row)
        if last:
            self.in_flight.pop(request_id)
            self.sent_at.pop(request_id, None)
            q.on_done(q.rows)

    def clear(self) -> None:
        """After a disconnect nothing in flight will be answered."""
        for rid in list(self.in_flight):
            q = self.in_flight.pop(rid)
            self.sent_at.pop(rid, None)
            q.rows = []
            self.pending.appendleft(q)


def position_lots(positions: list[dict[str, Any]], volume_key: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for p in positions:
        if p.get("direction") in ("long", "short"):
            key = (str(p["instrument"]), str(p["direction"]))
            out[key] = out.get(key, 0.0) + float(p.get(volume_key, 0.0))
    return out


def reconcile(
    ctp: dict[str, float],
    ctp_positions: list[dict[str, Any]],
    own: dict[str, Any],
    *,
    equity_tolerance: float,
    margin_tolerance: float,
    position_tolerance: float,
) -> list[dict[str, Any]]:
    """Differences between CTP's figures and fengkong's beyond the tolerances, one per figure
    or position: {figure, ctp, fengkong, drift, tolerance}."""
    out = []
    for figure, tol in (("equity", equity_tolerance), ("margin", margin_tolerance)):
        theirs, ours = float(ctp[figure]), float(own.get(figure, 0.0))
        if abs(theirs - ours) > tol:
            out.append({"figure": figure, "ctp": theirs, "fengkong": ours,
                        "drift": ours - theirs, "tolerance": tol})  # fmt: skip
    theirs_lots = position_lots(ctp_positions, "position")
    ours_lots = position_lots(list(own.get("positions", ())), "volume")
    for key in sorted(set(theirs_lots) | set(ours_lots)):
        a, b = theirs_lots.get(key, 0.0), ours_lots.get(key, 0.0)
        if abs(a - b) > position_tolerance:
            out.append({"figure": f"position {key[0]} {key[1]}", "ctp": a, "fengkong": b,
                        "drift": b - a, "tolerance": position_tolerance})  # fmt: skip
    return out
