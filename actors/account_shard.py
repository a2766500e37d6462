"""AccountShard actor: the accounts whose id hashes to this shard, as columns.

Account events arrive on the account bus (ZeroMQ, only this shard's bucket topics; the bus
client repairs gaps, so a restarted shard rebuilds its state without losing an event). Price
updates arrive from MarketFeeds; each one re-marks the shard's accounts in a few vector ops and
evaluates the account rules. Events go to the Correlator in batches, with at most one call in
flight (they coalesce while it is busy); net futures exposure per commodity goes to the
ExposureBooks when it changes.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import numpy as np
import ray

from actors.common import ACTOR_OPTIONS, BoundedSender
from gateways.accounts.bus import AccountBusClient
from infra import metrics
from infra.specs import load_contract_table
from rules.book import AccountBook, BookError
from rules.contracts import UnknownContract
from rules.model import PriceUpdate, RiskEvent
from rules.sharding import buckets_of_shard
from rules.threshold import HysteresisState, ThresholdRule, evaluate

EVENT_RETRY_S = 0.005
ACCOUNT_METRICS = ("risk_degree", "equity", "available", "margin", "position_profit")


@ray.remote(**ACTOR_OPTIONS)
class AccountShard:
    def __init__(
        self,
        shard: int,
        n_shards: int,
        bus_endpoint: str,
        snapshot_endpoint: str,
        rules: list[dict[str, Any]],
        correlator: Any = None,
        books: dict[str, Any] | None = None,
        audit: Any = None,
        margin_markup: float = 0.0,
        flush_ms: int = 100,
        contracts_overrides: tuple[str, ...] = (),
    ) -> None:
        self.shard = shard
        self.n_shards = n_shards
        self.name = f"AccountShard.{shard}"
        self.book = AccountBook(load_contract_table(contracts_overrides), margin_markup)
        self.rules = [
            self._rule(r) for r in rules if r.get("metric", "risk_degree") in ACCOUNT_METRICS
        ]
        self.states = {r.rule_id: HysteresisState() for r in self.rules}
        self.correlator = correlator
        self.books = books or {}
        self.audit = audit
        self.flush_s = flush_ms / 1000
        self._events: list[RiskEvent] = []
        self._audit_buf: list[dict[str, Any]] = []
        self._sender = BoundedSender(1)
        self._audit_sender = BoundedSender(2)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.counts: collections.Counter = collections.Counter()
        self.quarantine: collections.deque = collections.deque(maxlen=200)
        self.last_mark_ms = 0.0
        self._exposure_sent: dict[str, float] = {}
        self._m_marked = metrics.counter("accounts_marked_total", "account re-marks")
        self._m_events = metrics.counter("risk_events_total", "risk events emitted")
        self._tags = {"actor": self.name}
        self.bus = AccountBusClient(
            bus_endpoint, snapshot_endpoint, buckets_of_shard(shard, n_shards)
        )
        self.bus.connect()
        self._threads = [
            threading.Thread(target=self._bus_loop, daemon=True),
            threading.Thread(target=self._flush_loop, daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _rule(cfg: dict[str, Any]) -> ThresholdRule:
        return ThresholdRule(
            rule_id=cfg["id"],
            metric=cfg.get("metric", "risk_degree"),
            op=cfg.get("op", ">"),
            threshold=float(cfg["threshold"]),
            rearm=float(cfg.get("rearm", cfg["threshold"])),
            severity=cfg.get("severity", "warning"),
            description=cfg.get("description", ""),
            action=cfg.get("action") or None,
        )

    # ---- account events -------------------------------------------------------------------

    def _bus_loop(self) -> None:
        while not self._stop.is_set():
            records = self.bus.poll(100)
            if not records:
                continue
            try:
                with self._lock:
                    touched = {self._apply(rec) for rec in records} - {-1}
                    # Transfers and fills move risk too: evaluate now, not at the next tick.
                    rows = np.fromiter(touched, dtype=np.int64)
                    self.book.mark_accounts(rows)
                    ingress = min(r.get("bus_ts", time.time()) for r in records)
                    fired = self._evaluate(self.book.figures, ingress, rows)
                if fired:
                    self._send_events()
            except Exception as exc:  # never let one bad batch stop the shard's intake
                self.counts["internal_errors"] += 1
                self.quarantine.append(
                    {"ts": time.time(), "reason": f"{type(exc).__name__}: {exc}"}
                )

    def _apply(self, rec: dict[str, Any]) -> int:
        """Apply one account event; returns the account row it touched (-1 if rejected)."""
        kind = rec.get("type")
        row = -1
        try:
            if kind == "snapshot":
                row = self.book.apply_snapshot(rec)
            elif kind == "trade":
                row = self.book.apply_trade(rec)
                self._audit_buf.append(
                    {
                        "kind": "trade",
                        "actor": self.name,
                        "key": rec["account_id"],
                        "ref": rec.get("order_ref", ""),
                        **_plain(rec),
                    }
                )
            elif kind in ("deposit", "withdraw"):
                row = self.book.apply_transfer(
                    rec["account_id"], float(rec["amount"]), kind == "deposit"
                )
            elif kind == "update":
                row = self.book.apply_update(rec)
            elif kind == "remove":
                row = self.book.remove(rec["account_id"])
            else:
                raise BookError(f"unknown event type {kind!r}")
            self.counts[f"events_{kind}"] += 1
        except (BookError, UnknownContract, KeyError, ValueError, TypeError) as exc:
            self.counts["events_rejected"] += 1
            self.quarantine.append(
                {"ts": time.time(), "reason": f"{type(exc).__name__}: {exc}", "record": _plain(rec)}
            )
        n = self.book.n_accounts
        for state in self.states.values():
            state.resize(n)
        return row

    # ---- prices ---------------------------------------------------------------------------

    def on_prices(self, update: PriceUpdate) -> int:
        """Store prices, re-mark, evaluate rules; returns how many events fired."""
        with self._lock:
            t0 = time.perf_counter()
            contracts = self.book.set_prices(
                update.instruments, update.last, update.upper_limit, update.lower_limit
            )
            if contracts.size == 0 or self.book.n_accounts == 0:
                return 0
            rows = self.book.mark_contracts(contracts)
            self.last_mark_ms = (time.perf_counter() - t0) * 1000
            self.counts["marks"] += 1
            self.counts["accounts_marked"] += int(rows.size)
            if rows.size:
                self._m_marked.inc(int(rows.size), tags=self._tags)
            ingress = float(np.min(update.arrival_ts)) if update.arrival_ts.size else time.time()
            fired = self._evaluate(self.book.figures, ingress, rows)
        if fired:
            self._send_events()
        return fired

    def _evaluate(self, figures: Any, ingress: float, rows: np.ndarray) -> int:
        """Evaluate the account rules on `rows` (the accounts just re-marked)."""
        n = self.book.n_accounts
        rows = rows[self.book.active[rows]] if rows.size else rows
        fired_total = 0
        now = time.time()
        for rule in self.rules:
            value = getattr(figures, rule.metric)
            state = self.states[rule.rule_id]
            state.resize(n)
            fired = evaluate(rule, value[rows], state, rows)
            for row in fired:
                account_id = self.book.account_ids[row]
                self._events.append(
                    RiskEvent(
                        rule_id=rule.rule_id,
                        kind=f"account.{rule.metric}",
                        key=account_id,
                        severity=rule.severity,
                        value=float(value[row]),
                        threshold=rule.threshold,
                        ts=now,
                        ingress_ts=ingress,
                        episode=int(state.episode[row]),
                        dimension="account",
                        attributes={
                            "shard": self.shard,
                            "group_path": self.book.group_paths[row],
                            "equity": float(figures.equity[row]),
                            "margin": float(figures.margin[row]),
                            "available": float(figures.available[row]),
                            "risk_degree": float(figures.risk_degree[row]),
                            "instruments": self.book.instruments_held(row),
                            "description": rule.description,
                        },
                        action=rule.action,
                    )
                )
            fired_total += len(fired)
        if fired_total:
            self.counts["events"] += fired_total
            self._m_events.inc(fired_total, tags=self._tags)
        return fired_total

    def _send_events(self) -> None:
        if self.correlator is None or self._sender.busy():
            return
        with self._lock:
            events, self._events = self._events, []
        if events:
            self._sender.send(self.correlator.on_events.remote(events))

    # ---- periodic -------------------------------------------------------------------------

    def _flush_loop(self) -> None:
        """Events that found the correlator busy go out within EVENT_RETRY_S; exposure and
        journal records on the slower `flush_ms` cadence."""
        last_slow = 0.0
        while not self._stop.wait(EVENT_RETRY_S):
            if self._events:
                self._send_events()
            now = time.monotonic()
            if now - last_slow >= self.flush_s:
                last_slow = now
                self._send_exposure()
                self._send_audit()

    def _send_exposure(self) -> None:
        with self._lock:
            exposure = self.book.net_exposure_by_commodity()
        changed = {c: v for c, v in exposure.items() if self._exposure_sent.get(c) != v}
        for commodity, units in changed.items():
            book = self.books.get(commodity)
            if book is not None:
                book.on_futures_exposure.remote(self.shard, units)
            self._exposure_sent[commodity] = units

    def _send_audit(self) -> None:
        if self.audit is None or not self._audit_buf or self._audit_sender.busy():
            return
        with self._lock:
            batch, self._audit_buf = self._audit_buf, []
        self._audit_sender.send(self.audit.append.remote(batch))

    # ---- queries --------------------------------------------------------------------------

    def account(self, account_id: str) -> dict[str, Any]:
        with self._lock:
            return self.book.account_view(account_id)

    def has_account(self, account_id: str) -> bool:
        return account_id in self.book.account_index

    def top(self, n: int = 20, by: str = "risk_degree") -> list[dict[str, Any]]:
        with self._lock:
            if self.book.n_accounts == 0:
                return []
            figures = self.book.mark()  # a query may come before any price: mark everything
            values = getattr(figures, by)
            rows = np.flatnonzero(self.book.active[: self.book.n_accounts])
            order = rows[np.argsort(-values[rows], kind="stable")[:n]]
            return [
                {
                    "account_id": self.book.account_ids[r],
                    "group_path": self.book.group_paths[r],
                    "equity": float(figures.equity[r]),
                    "margin": float(figures.margin[r]),
                    "available": float(figures.available[r]),
                    "risk_degree": float(figures.risk_degree[r]),
                }
                for r in order
            ]

    def risk_degrees(self) -> dict[str, float]:
        with self._lock:
            figures = self.book.mark()
            return {
                a: float(figures.risk_degree[i])
                for i, a in enumerate(self.book.account_ids)
                if self.book.active[i]
            }

    def stats(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "accounts": int(self.book.active[: self.book.n_accounts].sum()),
            "positions": self.book.n_positions,
            "last_mark_ms": self.last_mark_ms,
            "full_marks": self.book.full_marks,
            "incremental_marks": self.book.incremental_marks,
            "bus": dict(self.bus.stats),
            "send_errors": self._sender.errors,
            **dict(self.counts),
            "quarantine": list(self.quarantine)[-5:],
        }

    def memory_mb(self) -> float:
        """Account state held by this shard (numpy columns and id maps), in MB."""
        with self._lock:
            return self.book.state_bytes() / 1e6

    def stop(self) -> None:
        self._stop.set()


def _plain(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("kind", "actor", "key", "ref")}
