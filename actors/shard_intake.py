"""The intake part of an AccountShard: account events from the bus, applied one by one.

A mixin so the shard's file keeps to its messages. Every polled record is either applied or
rejected alone: a record the wire format or the book refuses, and equally one whose application
raises something nobody foresaw (a ts of 1e300, a NaN), is counted (`events_rejected`),
quarantined with its reason and journaled as `account_event_rejected`; the rest of the batch is
applied. The bus client hands over a batch only after it has advanced past it, so no record is
left half-taken: each one of a polled batch ends applied or rejected before the next poll.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from gateways.accounts.wire import record_problem
from rules.book import BookError
from rules.fundflow import FlowLedger

FORESEEN = (BookError, KeyError, ValueError, TypeError)
LATEST_TS = 4_102_444_800.0  # 2100-01-01: a record time past it is a corrupt figure


class ShardIntake:
    """Mixin: needs the shard's `book`, `bus`, `ledgers`, `strategies`, `_lock`, `_settled`,
    `_audit_buf`, `engine`, the shell's `counts`/`reject`/`failed`/`stopping`, and the rule
    mixin's `_evaluate`, `_activity`, `_judge_transfer`; `_send_events` of the shard."""

    def _intake_step(self) -> None:
        """One poll of the bus and the batch it returned (the shell's loop calls it)."""
        try:
            records = self.bus.poll(100)
        except Exception as exc:  # a socket error: count it, keep taking events
            self.failed("bus", exc)
            time.sleep(0.1)
            return
        if not records:
            return
        try:
            with self._lock:
                touched = {self._apply(rec) for rec in records} - {-1}
                touched |= self._settled  # a settlement rolls every account
                self._settled = set()
                # Transfers and fills move risk too: evaluate now, not at the next tick.
                rows = np.fromiter(touched, dtype=np.int64)
                self.book.mark_accounts(rows)
                ingress = min(_number(r.get("bus_ts"), time.time()) for r in records)
                fired = self._evaluate(self.book.figures, ingress, rows)
            if fired or self._events:  # transfers' fund-flow events too
                self._send_events()
        except Exception as exc:  # never let one bad batch stop the shard's intake
            self.counts["internal_errors"] += 1
            self.failed("intake", exc)
            self.reject(f"{type(exc).__name__}: {exc}")

    def _apply(self, rec: dict[str, Any]) -> int:
        """Apply one account event; returns the account row it touched (-1 if rejected)."""
        kind = rec.get("type")
        try:
            row = self._apply_kind(kind, rec)
            self.counts[f"events_{kind}"] += 1
        except Exception as exc:  # foreseen (FORESEEN) or not: this record alone is refused
            if not isinstance(exc, FORESEEN):
                self.counts["events_failed"] += 1  # a bug or a hostile figure; look at it
            self._refuse(rec, f"{type(exc).__name__}: {exc}")
            row = -1
        self.engine.resize(self.book.n_accounts)
        return row

    def _refuse(self, rec: dict[str, Any], reason: str) -> None:
        self.counts["events_rejected"] += 1
        self.reject(reason, _plain(rec))
        self._audit_buf.append({"kind": "account_event_rejected", "actor": self.name,
                                "key": str(rec.get("account_id", "")), "reason": reason,
                                "record": _plain(rec)})  # fmt: skip

    def _apply_kind(self, kind: Any, rec: dict[str, Any]) -> int:
        problem = record_problem(rec) or _time_problem(rec)  # docs/accounts-wire.md
        if problem is not None:
            raise BookError(problem)  # before anything is applied: the book stays as it was
        book, row = self.book, -1
        if kind == "settlement":  # every account: today's lots become yesterday's
            self._settled.update(book.apply_settlement(rec).tolist())
            self._journal("settlement", str(rec["trading_day"]), rec)
        elif kind == "snapshot":
            row = book.apply_snapshot(rec)
            ledger = self.ledgers[row] = FlowLedger()
            ledger.seed(rec.get("flow_history", ()))
            self.strategies[row] = str(rec.get("strategy", ""))
            self._nodes = None
        elif kind == "trade":
            row = self._activity(book.apply_trade(rec), rec)
            self._journal("trade", rec["account_id"], rec, ref=rec.get("order_ref", ""))
        elif kind in ("deposit", "withdraw"):
            row = book.apply_transfer(rec["account_id"], float(rec["amount"]), kind == "deposit")
            self._judge_transfer(row, rec, kind == "deposit")
        elif kind == "update":
            row = book.apply_update(rec)
            if "group_path" in rec or "strategy" in rec:
                self.strategies[row] = str(rec.get("strategy", self.strategies.get(row, "")))
                self._nodes = None
        elif kind == "remove":
            row = book.remove(rec["account_id"])
        elif kind in ("order", "cancel"):  # the order stream, for behaviour rules
            row = self._activity(book.row_of(str(rec["account_id"])), rec)
            if kind == "order" and "status" in rec:  # frozen margin and commission
                book.apply_order(rec)
        else:
            raise BookError(f"unknown event type {kind!r}")
        return row

    def _journal(self, kind: str, key: str, rec: dict[str, Any], **extra: Any) -> None:
        self._audit_buf.append({"kind": kind, "actor": self.name, "key": key, **extra,
                                **_plain(rec)})  # fmt: skip


def _time_problem(rec: dict[str, Any]) -> str | None:
    """A record time the rules cannot place (NaN, infinite, negative, past 2100): the fund-flow
    day and the behaviour windows would be corrupted by it, so it is refused up front."""
    for key in ("ts", "bus_ts"):
        value = rec.get(key)
        if isinstance(value, int | float) and not 0.0 <= value <= LATEST_TS:  # NaN fails too
            return f"{rec.get('type')}: {key}={value!r} is not a time (seconds since the epoch)"
    return None


def _number(value: Any, default: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if value == value else default  # NaN: the default


def _plain(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("kind", "actor", "key", "ref")}
