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
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from actors.common import ACTOR_OPTIONS, BoundedSender
from actors.context import Context
from actors.shard_rules import AccountRules
from gateways.accounts.bus import AccountBusClient
from gateways.accounts.wire import record_problem
from infra import metrics
from rules.account_math import FIGURES
from rules.book import AccountBook, AccountPolicy, BookError
from rules.contracts import UnknownContract
from rules.fundflow import FlowLedger
from rules.hierarchy import NodeIndex, exposure_rollup, level_of, node_paths, rollup
from rules.model import PriceUpdate, RiskEvent
from rules.sessions import LABEL_BITS, LABELS
from rules.sharding import buckets_of_shard

EVENT_RETRY_S = 0.005
ROLLUP_EVERY_S = 1.0
ASCENDING = ("liquidation_distance", "available", "equity", "static_equity")


@dataclass(frozen=True)
class AccountShardSettings:
    shard: int
    n_shards: int
    bus_endpoint: str  # account bus PUB (live events)
    snapshot_endpoint: str  # account bus ROUTER (replay from a sequence)
    margin_markup: float = 0.0  # broker's markup over the exchange margin rate
    flush_ms: int = 100  # how often events and exposures are sent on
    policies: tuple[dict[str, Any], ...] = ()  # `[[accounts.policies]]`, first match wins


@ray.remote(**ACTOR_OPTIONS)
class AccountShard(AccountRules):
    def __init__(
        self,
        settings: AccountShardSettings,
        *,
        context: Context | None = None,
        rules: list[dict[str, Any]] | dict[str, Any] | None = None,
        correlator: Any = None,
        books: dict[str, Any] | None = None,
        audit: Any = None,
        hierarchy: Any = None,
    ) -> None:
        shard, n_shards = settings.shard, settings.n_shards
        bus_endpoint, snapshot_endpoint = settings.bus_endpoint, settings.snapshot_endpoint
        flush_ms = settings.flush_ms
        self.settings = settings
        self.context = context if context is not None else Context.of()
        self.shard = shard
        self.n_shards = n_shards
        self.name = f"AccountShard.{shard}"
        self.book = AccountBook(
            self.context.contracts,
            settings.margin_markup,
            [AccountPolicy(**p) for p in settings.policies],
        )
        self.ledgers: dict[int, FlowLedger] = {}
        self.strategies: dict[int, str] = {}
        self.hierarchy = hierarchy
        self._nodes: NodeIndex | None = None  # rebuilt when group paths change
        self._rollup_sender = BoundedSender(1)
        self._unit_exposure_sent: dict[str, dict[str, float]] = {}
        self._last_rollup = 0.0
        self.correlator = correlator
        self.books = books or {}
        self.audit = audit
        self._init_rules(rules, audit)  # rule set (or the journal's latest): actors/shard_rules
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
        self._settled: set[int] = set()  # rows rolled by settlements of the current batch
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

    # ---- account events -------------------------------------------------------------------

    def _loop_error(self, loop: str, exc: Exception) -> None:
        self.counts[f"{loop}_errors"] += 1
        self.quarantine.append(
            {"ts": time.time(), "reason": f"{loop}: {type(exc).__name__}: {exc}"}
        )

    def _bus_loop(self) -> None:
        try:
            self._bus_intake()
        finally:
            self.bus.close()

    def _bus_intake(self) -> None:
        while not self._stop.is_set():
            try:
                records = self.bus.poll(100)
            except Exception as exc:  # a socket error: count it, keep taking events
                self._loop_error("bus", exc)
                time.sleep(0.1)
                continue
            if not records:
                continue
            try:
                with self._lock:
                    touched = {self._apply(rec) for rec in records} - {-1}
                    touched |= self._settled  # a settlement rolls every account
                    self._settled = set()
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
            problem = record_problem(rec)  # the wire format (docs/accounts-wire.md)
            if problem is not None:
                raise BookError(problem)
            if kind == "settlement":  # every account: today's lots become yesterday's
                self._settled.update(self.book.apply_settlement(rec).tolist())
                self._audit_buf.append({"kind": "settlement", "actor": self.name,
                                        "key": str(rec["trading_day"]), **_plain(rec)})  # fmt: skip
            elif kind == "snapshot":
                row = self.book.apply_snapshot(rec)
                ledger = self.ledgers[row] = FlowLedger()
                ledger.seed(rec.get("flow_history", ()))
                self.strategies[row] = str(rec.get("strategy", ""))
                self._nodes = None
            elif kind == "trade":
                row = self._activity(self.book.apply_trade(rec), rec)
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
                self._judge_transfer(row, rec, kind == "deposit")
            elif kind == "update":
                row = self.book.apply_update(rec)
                if "group_path" in rec or "strategy" in rec:
                    self.strategies[row] = str(rec.get("strategy", self.strategies.get(row, "")))
                    self._nodes = None
            elif kind == "remove":
                row = self.book.remove(rec["account_id"])
            elif kind in ("order", "cancel"):  # the order stream, for behaviour rules
                row = self._activity(self.book.row_of(str(rec["account_id"])), rec)
                if kind == "order" and "status" in rec:  # frozen margin and commission
                    self.book.apply_order(rec)
            else:
                raise BookError(f"unknown event type {kind!r}")
            self.counts[f"events_{kind}"] += 1
        except (BookError, UnknownContract, KeyError, ValueError, TypeError) as exc:
            self.counts["events_rejected"] += 1
            reason = f"{type(exc).__name__}: {exc}"
            self.quarantine.append({"ts": time.time(), "reason": reason, "record": _plain(rec)})
            self._audit_buf.append({"kind": "account_event_rejected", "actor": self.name,
                                    "key": str(rec.get("account_id", "")), "reason": reason,
                                    "record": _plain(rec)})  # fmt: skip
        self.engine.resize(self.book.n_accounts)
        return row

    # ---- hierarchy ------------------------------------------------------------------------

    def rollup(self) -> dict[str, Any]:
        """This shard's sums per hierarchy node: figures and net exposure by commodity."""
        with self._lock:
            book = self.book
            if self._nodes is None:
                self._nodes = NodeIndex(
                    [
                        node_paths(book.group_paths[r], self.strategies.get(r, ""))
                        for r in range(book.n_accounts)
                    ]
                )
            if book._marked_positions != book.n_positions:
                book.mark()
            figures = book.figures
            na, n = book.n_accounts, book.n_positions
            active = book.active[:na]
            nodes = rollup(
                self._nodes,
                active,
                {
                    name: getattr(figures, name)
                    for name in ("equity", "margin", "exchange_margin", "available")
                },
            )
            commodities = sorted(set(book.contracts.commodity))
            code = {c: i for i, c in enumerate(commodities)}
            pos_commodity = np.array(
                [code[book.contracts.commodity[c]] for c in range(len(book.contracts))],
                dtype=np.int64,
            )
            units = book.pos["sign"][:n] * book.pos["volume"][:n] * book.pos["multiplier"][:n]
            units = units * active[book.pos_account[:n]]
            exposure = exposure_rollup(
                self._nodes,
                book.pos_account[:n],
                pos_commodity[book.pos_contract[:n]] if n else pos_commodity[:0],
                units,
                commodities,
            )
        return {"shard": self.shard, "nodes": nodes, "exposure": exposure}

    def _send_rollup(self) -> None:
        """About once a second: node sums to the Hierarchy, and each commodity's futures
        exposure per business unit to its ExposureBook (when it changed)."""
        if self.hierarchy is None and not self.books:
            return
        if self._rollup_sender.busy() or time.monotonic() - self._last_rollup < ROLLUP_EVERY_S:
            return
        self._last_rollup = time.monotonic()
        part = self.rollup()
        if self.hierarchy is not None:
            self._rollup_sender.send(self.hierarchy.on_rollup.remote(part))
        by_commodity: dict[str, dict[str, float]] = {}
        for node, exposure in part["exposure"].items():
            if level_of(node) == "unit":
                for commodity, units in exposure.items():
                    by_commodity.setdefault(commodity, {})[node] = units
        for commodity, book in self.books.items():
            units = by_commodity.get(commodity, {})
            if self._unit_exposure_sent.get(commodity) != units:
                book.on_futures_exposure_by_unit.remote(self.shard, units)
                self._unit_exposure_sent[commodity] = units

    # ---- prices ---------------------------------------------------------------------------

    def on_prices(self, update: PriceUpdate) -> int:
        """Store prices, re-mark, evaluate rules; returns how many events fired."""
        with self._lock:
            t0 = time.perf_counter()
            contracts = self.book.set_prices(
                update.instruments,
                update.last,
                update.upper_limit,
                update.lower_limit,
                update.pre_settlement,
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
            try:
                if self._events:
                    self._send_events()
                now = time.monotonic()
                if now - last_slow >= self.flush_s:
                    last_slow = now
                    self._send_exposure()
                    self._send_audit()
                    self._send_rollup()
            except Exception as exc:  # one failed send must not stop the cadence for good
                self._loop_error("flush", exc)

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

    def accounts(self, account_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Views of many accounts in one call (unknown ids are left out)."""
        with self._lock:
            known = [a for a in account_ids if a in self.book.account_index]
            return self.book.account_views(known)

    def has_account(self, account_id: str) -> bool:
        return account_id in self.book.account_index

    def top(self, n: int = 20, by: str = "risk_degree", group: str = "") -> list[dict[str, Any]]:
        """The n riskiest accounts by a figure (largest first; for distances and money
        figures, smallest first), optionally within a node of the hierarchy."""
        if by not in FIGURES:
            raise ValueError(f"unknown figure {by!r}; one of {FIGURES}")
        with self._lock:
            book = self.book
            if book.n_accounts == 0:
                return []
            if book._marked_positions != book.n_positions:
                book.mark()  # a query may come before any price
            figures = book.figures
            values = getattr(figures, by)
            rows = np.flatnonzero(book.active[: book.n_accounts])
            if group:
                prefix = group.rstrip("/") + "/"
                rows = np.array(
                    [r for r in rows if (book.group_paths[r] + "/").startswith(prefix)],
                    dtype=np.int64,
                )
            keys = values[rows] if by in ASCENDING else -values[rows]
            order = rows[np.argsort(keys, kind="stable")[:n]]
            return [
                {
                    "account_id": book.account_ids[r],
                    "group_path": book.group_paths[r],
                    **{name: float(getattr(figures, name)[r]) for name in FIGURES},
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

    def stress(self, scenario: dict, target: float) -> Any:
        """The scenario (a record) evaluated on a copy of the live book (rules.stress.evaluate)."""
        from rules.stress import evaluate, scenario_from_record

        with self._lock:
            return evaluate(self.book, scenario_from_record(scenario), target=target)

    def session_labels(self, ts: float) -> list[str]:
        """The session labels the shard's session-scoped rules see at `ts` (none on a holiday)."""
        bits = self._gate.bits(ts)
        return [label for label in LABELS if LABEL_BITS[label] & bits]

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
