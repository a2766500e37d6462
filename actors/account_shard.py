"""AccountShard actor: the accounts whose id hashes to this shard, as columns.

Account events arrive on the account bus (ZeroMQ, only this shard's bucket topics; the bus
client repairs gaps, so a restarted shard rebuilds its state without losing an event) and are
applied one by one (actors/shard_intake.py). Price updates arrive from MarketFeeds; each one
re-marks the shard's accounts in a few vector ops and evaluates the account rules
(actors/shard_rules.py). Events go to the Correlator in batches, with at most one call in
flight (they coalesce while it is busy); net futures exposure per commodity goes to the
ExposureBooks when it changes; node sums go to the Hierarchy (actors/shard_views.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from actors.common import ACTOR_OPTIONS, BoundedSender, JournalSender
from actors.context import Context
from actors.shard_intake import ShardIntake
from actors.shard_rules import AccountRules
from actors.shard_views import node_index, rollup_of, top_of, unit_exposure_by_commodity
from actors.shell import ActorShell
from gateways.accounts.bus import AccountBusClient
from rules.book import AccountBook, AccountPolicy
from rules.fundflow import FlowLedger
from rules.hierarchy import NodeIndex
from rules.model import PriceUpdate, RiskEvent
from rules.sessions import LABEL_BITS, LABELS
from rules.sharding import buckets_of_shard

ROLLUP_EVERY_S = 1.0
QUARANTINE_SIZE = 200


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
class AccountShard(ActorShell, ShardIntake, AccountRules):
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
        super().__init__(f"AccountShard.{settings.shard}", context, QUARANTINE_SIZE)
        self.settings = settings
        self.shard, self.n_shards = settings.shard, settings.n_shards
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
        self._last_slow = 0.0
        self.correlator = correlator
        self.books = books or {}
        self.audit = audit
        self._lock = threading.RLock()
        self._init_rules(rules, audit)  # rule set (or the journal's latest): actors/shard_rules
        self.flush_s = settings.flush_ms / 1000
        self._events: list[RiskEvent] = []
        self._held = threading.Event()  # events held back by a busy correlator: wake the flush
        self._audit_buf: list[dict[str, Any]] = []
        self._sender = BoundedSender(1)
        self._audit_sender = BoundedSender(2)
        self._numbered = JournalSender(self.name)  # `audit verify` sees a gap
        self.last_mark_ms = 0.0
        self._settled: set[int] = set()  # rows rolled by settlements of the current batch
        self._exposure_sent: dict[str, float] = {}
        self._m_marked = self.metric("counter", "accounts_marked_total", "account re-marks")
        self._m_events = self.metric("counter", "risk_events_total", "risk events emitted")
        self._tags = {"actor": self.name}
        self.bus = AccountBusClient(
            settings.bus_endpoint,
            settings.snapshot_endpoint,
            buckets_of_shard(self.shard, self.n_shards),
        )
        self.bus.connect()
        self.every(0.0, self._intake_step, "bus")  # polls block up to 100 ms each
        self.every(0.0, self._flush_step, "flush")  # each step waits for work or its cadence

    # ---- hierarchy ------------------------------------------------------------------------

    def rollup(self) -> dict[str, Any]:
        """This shard's sums per hierarchy node: figures and net exposure by commodity."""
        with self._lock:
            if self._nodes is None:
                self._nodes = node_index(self.book, self.strategies)
            nodes, exposure = rollup_of(self.book, self._nodes)
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
        by_commodity = unit_exposure_by_commodity(part["exposure"])
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
            if self._events:
                self._held.set()
            return
        with self._lock:
            events, self._events = self._events, []
        if events:
            self._sender.send(self.correlator.on_events.remote(events))

    # ---- periodic -------------------------------------------------------------------------

    def _flush_step(self) -> None:
        """Events that found the correlator busy go out as soon as its answer to the call in
        flight arrives; exposure, journal records and roll-ups on the slower `flush_ms` cadence.
        The step blocks on the answer or on `_held`, never on a short timer: an idle shard
        wakes once per `flush_ms` (a 5 ms retry timer cost each shard 3% of a core)."""
        due = max(0.0, self._last_slow + self.flush_s - time.monotonic())
        if self._events and self.correlator is not None:
            self._sender.wait_free(due)
            self._send_events()
        else:
            self._held.wait(due)
            self._held.clear()
        now = time.monotonic()
        if now - self._last_slow >= self.flush_s:
            self._last_slow = now
            self._send_exposure()
            self._send_audit()
            self._send_rollup()

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
        self._audit_sender.send(self._numbered.send(self.audit, batch))

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
        """The n riskiest accounts by a figure (actors/shard_views.top_of)."""
        with self._lock:
            return top_of(self.book, n, by, group)

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

    def figures(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "accounts": int(self.book.active[: self.book.n_accounts].sum()),
            "positions": self.book.n_positions,
            "last_mark_ms": self.last_mark_ms,
            "full_marks": self.book.full_marks,
            "incremental_marks": self.book.incremental_marks,
            "bus": dict(self.bus.stats),
            "send_errors": self._sender.errors,
            "quarantine": list(self.quarantine)[-5:],
        }

    def memory_mb(self) -> float:
        """Account state held by this shard (numpy columns and id maps), in MB."""
        with self._lock:
            return self.book.state_bytes() / 1e6

    def stop(self) -> None:
        super().stop()  # the intake loop has ended: its socket can close
        self.bus.close()
