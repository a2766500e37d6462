"""The rule part of an AccountShard: its account rules, evaluated on every re-mark, the
order/trade stream for behaviour rules, and hot reload.

A mixin so the shard's file keeps to accounts and prices. The shard calls `_init_rules` in its
constructor, `_evaluate` after every mark (prices, fills, transfers), `_activity` for order,
cancel and trade records, `_judge_transfer` for deposits and withdrawals (the fund-flow rules),
and anyone may call `set_rules` (hot reload): the new rules replace the old under the shard's
lock, between two marks, so no price update or account event is evaluated half by the old set
and half by the new, none is skipped, and rules that did not change keep their arming state (no
alert fires twice). Rules added or changed are evaluated on every account at once, so an account
already past a new line is reported now, not at its next price move.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import ray

from actors.rule_host import bundle_of, start_ruleset
from rules.book import ACCOUNT_COLUMNS
from rules.contracts import UnknownContract, product_of
from rules.engine.evaluator import RuleEngine
from rules.engine.kinds import kind_of
from rules.engine.kinds.behaviour import SelfTradeDetector
from rules.engine.kinds.session import SessionGate
from rules.engine.metrics import DERIVED_METRICS, derived_metric
from rules.engine.spec import RuleSet
from rules.engine.template import Fired
from rules.fundflow import book_transfer
from rules.journal_records import AdaptiveState
from rules.model import RiskEvent

log = logging.getLogger(__name__)
ADAPTIVE_SNAPSHOT_S = 60.0  # how often the learned baselines are journaled (when they changed)


class AccountRules:
    """Mixin: needs `self.book`, `self._lock`, `self._events`, `self.counts`, `self.shard`,
    `self.ledgers` (rules.fundflow.FlowLedger per account row);
    `self.context` (its calendar carries the exchange holidays)."""

    def _init_rules(self, rules: Any, audit: Any) -> None:
        ruleset, context = start_ruleset(rules, audit)
        self._gate = SessionGate(self.context.calendar, float(context.get("clock_shift_s", 0.0)))
        self.engine = RuleEngine((), self._gate)
        self.transfer_engine = RuleEngine((), self._gate)  # fund-flow rules, on transfers
        self.ruleset = RuleSet()
        self._self_trades = SelfTradeDetector()
        self._install(ruleset)
        self._adopted = 0  # accounts (rows) that took their restored baselines
        self._adaptive_saved = time.monotonic()
        if audit is not None and context.get("recover", False):
            self._restore_adaptive(audit)

    def _install(self, ruleset: RuleSet) -> dict[str, Any]:
        def placed(place: str) -> list[Any]:
            return [r for r in ruleset.everything if kind_of(r.kind).place(r) == place]

        report = self.engine.replace(placed("account"))
        transfers = self.transfer_engine.replace(placed("transfers"))
        for key, ids in transfers.items():
            report[key] = sorted([*report[key], *ids])
        self.engine.resize(self.book.n_accounts)
        self.transfer_engine.resize(self.book.n_accounts)
        self.ruleset = ruleset
        return report

    def set_rules(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Install a new rule set now; returns what changed and what fired at once."""
        ruleset = bundle_of(bundle)
        with self._lock:
            report = self._install(ruleset)
            fresh = set(report["added"]) | set(report["changed"])
            fired = 0
            if fresh and self.book.n_accounts:
                self.book.ensure_marked()
                rows = np.flatnonzero(self.book.active[: self.book.n_accounts])
                fired = self._evaluate(self.book.figures, time.time(), rows, only=fresh)
        if fired:
            self._send_events()
        self.counts["rule_reloads"] += 1
        return {"actor": self.name, "version": ruleset.version, **report, "fired": fired}

    # ---- learned baselines: part of the shard's recoverable state ---------------------------

    def _has_adaptive(self) -> bool:
        return any(hasattr(g, "state") for e in (self.engine, self.transfer_engine)
                   for g in e.groups)  # fmt: skip

    def adaptive_snapshot(self) -> dict[str, Any]:
        """The adaptive rules' baselines by account id (rules.journal_records.AdaptiveState)."""
        with self._lock:
            ids = self.book.account_ids
            return AdaptiveState(
                actor=self.name, key=self.name, ref=self.ruleset.version, ts=time.time(),
                account_rules=self.engine.adaptive_state(ids),
                transfer_rules=self.transfer_engine.adaptive_state(ids),
            ).to_record()  # fmt: skip

    def save_adaptive(self) -> int:
        """Journal the baselines now (before a planned stop; the cadence does it anyway);
        returns how many records were queued (0: no adaptive rule or no journal)."""
        if self.audit is None or not self._has_adaptive():
            return 0
        record = self.adaptive_snapshot()
        with self._lock:
            self._audit_buf.append(record)
        self.counts["adaptive_snapshots"] += 1
        return 1

    def _maybe_save_adaptive(self) -> None:
        """Every ADAPTIVE_SNAPSHOT_S, the baselines to the journal (with the other records)."""
        if self.audit is None or time.monotonic() - self._adaptive_saved < ADAPTIVE_SNAPSHOT_S:
            return
        self._adaptive_saved = time.monotonic()
        if self._has_adaptive():
            self._audit_buf.append(self.adaptive_snapshot())
            self.counts["adaptive_snapshots"] += 1

    def _restore_adaptive(self, audit: Any) -> None:
        """A restarted shard starts from its last journaled baselines: the accounts take them
        as the bus replays their snapshots; records the baselines already hold are not folded
        twice (the kinds skip what is older than their state)."""
        try:
            found = ray.get(audit.query.remote(kind=AdaptiveState.KIND, key=self.name),
                            timeout=30.0)  # fmt: skip
        except Exception as exc:  # no journal: baselines learn afresh
            log.warning("adaptive baselines not recovered: %s", exc)
            return
        if not found:
            return
        last = AdaptiveState.from_record(found[-1])
        got = self.engine.restore_adaptive(last.account_rules, {})
        got += self.transfer_engine.restore_adaptive(last.transfer_rules, {})
        self.counts["adaptive_restored"] = len(got)

    def _adopt_new_accounts(self) -> None:
        """Accounts that appeared since the last look take their restored baselines."""
        n = self.book.n_accounts
        if n > self._adopted:
            rows = {self.book.account_ids[r]: r for r in range(self._adopted, n)}
            self.engine.adopt(rows)
            self.transfer_engine.adopt(rows)
            self._adopted = n

    def rules_info(self) -> dict[str, Any]:
        return {
            "actor": self.name,
            "version": self.ruleset.version,
            "rules": sorted([*self.engine.specs, *self.transfer_engine.specs]),
        }

    def _universe(self) -> np.ndarray:
        """Every live account: what a rule at an edge (session opening, new window) sees."""
        return np.flatnonzero(self.book.active[: self.book.n_accounts])

    def _column(self, metric: str, rows: np.ndarray) -> np.ndarray:
        if metric in ACCOUNT_COLUMNS:
            return self.book.acc[metric][rows]
        if metric in DERIVED_METRICS:  # e.g. locked_risk_degree (rules.engine.metrics)
            return derived_metric(metric, self.book.figures, rows)
        return getattr(self.book.figures, metric)[rows]

    def _activity(self, row: int, rec: dict[str, Any]) -> int:
        """Count an order, cancel or fill for the behaviour rules; returns the row."""
        kind = rec.get("type")
        ts = float(rec.get("ts") or rec.get("bus_ts") or time.time())
        rows = np.array([row], dtype=np.int64)
        self._adopt_new_accounts()
        self.engine.resize(self.book.n_accounts)
        self.engine.on_activity("trade" if kind == "trade" else kind, rows, ts)
        if kind == "trade":
            turnover = self._turnover(rec)
            if turnover:  # the anomaly model's turnover feature
                self.engine.on_amount("turnover", rows, np.array([turnover]), ts)
            direction = 1 if str(rec.get("direction")) in ("long", "buy", "1") else -1
            if self._self_trades.fill(
                row, str(rec.get("instrument", "")), str(rec.get("trade_id", "")), direction
            ):
                self.engine.on_activity("self_trade", rows, ts)
                self.counts["self_trades"] += 1
        return row

    def _turnover(self, rec: dict[str, Any]) -> float:
        """price × volume × multiplier of a fill (0 when its contract is unknown)."""
        try:
            spec = self.context.contracts.spec(product_of(str(rec.get("instrument", ""))))
            return abs(float(rec["price"]) * float(rec["volume"])) * float(spec.multiplier)
        except (KeyError, TypeError, ValueError, UnknownContract):
            return 0.0

    def _evaluate(
        self, figures: Any, ingress: float, rows: np.ndarray, only: set[str] | None = None
    ) -> int:
        """Evaluate the account rules on `rows` (the accounts just re-marked)."""
        n = self.book.n_accounts
        rows = rows[self.book.active[rows]] if rows.size else rows
        unpriced = self.book.unpriced_accounts()
        if unpriced is not None and rows.size:
            # Not judged until every contract it holds has a price: a figure marked at cost
            # (the stand-in before the first tick) must not fire a rule.
            rows = rows[~unpriced[rows]]
        self.engine.resize(n)
        self._adopt_new_accounts()
        self._maybe_save_adaptive()
        now = time.time()
        fired = self.engine.evaluate(self._column, rows, now, only=only, universe=self._universe)
        total = 0
        for f in fired:
            self._events.extend(self._risk_events(f, figures, now, ingress))
            total += int(f.rows.size)
        if total:
            self.counts["events"] += total
            self._m_events.inc(total, tags=self._tags)
        return total

    def _judge_transfer(self, row: int, rec: dict[str, Any], deposit: bool) -> None:
        """Book the transfer in the account's ledger and evaluate the fund-flow rules on it
        (the transfer engine, rules.engine.kinds.fundflow). Alert ids are deterministic so a
        replay after a restart raises nothing twice: a single transfer's episode is its bus
        sequence number, the day's outflow is one episode."""
        ts = float(rec.get("ts") or rec.get("bus_ts") or time.time())
        amount = float(rec["amount"])
        self._adopt_new_accounts()
        source = book_transfer(self.ledgers, row, ts, amount, deposit)
        rows = np.array([row], dtype=np.int64)
        if not deposit:  # the anomaly model's withdrawal feature
            self.engine.on_amount("withdraw", rows, np.array([amount]), ts)
        for f in self.transfer_engine.evaluate(source, rows, ts):
            spec = f.spec
            evidence = f.evidence(0)
            if evidence is not None:  # fundflow_anomaly: against the account's own baseline
                self._events.append(self._transfer_anomaly(f, row, rec, source.day, evidence))
                self.counts["fund_flow_events"] += 1
                continue
            single = spec.metric == "transfer"
            limit = float(f.limits[0]) if f.limits is not None else spec.threshold
            value = float(f.values[0])
            if single:
                reason = "SINGLE_TRANSFER_ABOVE_LIMIT"
                detail = f"{'deposit' if deposit else 'withdrawal'} of {amount:,.2f}"
            else:
                reason = "OUTFLOW_ABOVE_BASELINE"
                mean, days = source.baseline(rows, int(spec.param("days", 20)))
                detail = (f"day's outflow {value:,.2f} > {spec.threshold:g} × mean "
                          f"{float(mean[0]):,.2f} of {int(days[0])} days")  # fmt: skip
            self._events.append(
                RiskEvent(
                    rule_id=spec.id,
                    kind="account.fund_flow",
                    key=self.book.account_ids[row],
                    severity=spec.severity,
                    value=value,
                    threshold=limit,
                    ts=time.time(),
                    ingress_ts=float(rec.get("bus_ts", ts)),
                    episode=int(rec.get("seq", 0)) if single else 1,
                    dimension="account",
                    attributes={
                        "reason": reason,
                        "day": source.day,
                        "detail": detail,
                        "group_path": self.book.group_paths[row],
                        "description": spec.description,
                        "rule_kind": spec.kind,
                    },
                    action=dict(spec.action) if spec.action else None,
                )
            )
            self.counts["fund_flow_events"] += 1

    def _transfer_anomaly(
        self, f: Fired, row: int, rec: dict[str, Any], day: str, evidence: dict[str, Any]
    ) -> RiskEvent:
        """A transfer unusual for this account (rules.engine.kinds.adaptive); its episode is
        the bus sequence number, so a replay raises nothing twice."""
        spec = f.spec
        return RiskEvent(
            rule_id=spec.id, kind=f"account.{spec.kind}", key=self.book.account_ids[row],
            severity=spec.severity, value=float(f.values[0]), threshold=spec.threshold,
            ts=time.time(), ingress_ts=float(rec.get("bus_ts", rec.get("ts", 0.0))),
            episode=int(rec.get("seq", 0)) or int(f.episodes[0]), dimension="account",
            attributes={"reason": "TRANSFER_UNUSUAL_FOR_ACCOUNT", "day": day,
                        "detail": evidence["text"], "evidence": evidence,
                        "group_path": self.book.group_paths[row],
                        "description": spec.description, "rule_kind": spec.kind},
            action=dict(spec.action) if spec.action else None,
        )  # fmt: skip

    def _risk_events(self, f: Fired, figures: Any, now: float, ingress: float) -> list[RiskEvent]:
        spec = f.spec
        out = []
        for j, (row, value, episode) in enumerate(zip(
            f.rows.tolist(), f.values.tolist(), f.episodes.tolist(), strict=True
        )):  # fmt: skip
            evidence = f.evidence(j)  # adaptive kinds: score, baseline, threshold used
            out.append(
                RiskEvent(
                    rule_id=spec.id,
                    kind=f"account.{spec.metric}"
                    if spec.kind in ("threshold", "session")
                    else f"account.{spec.kind}.{spec.metric}",
                    key=self.book.account_ids[row],
                    severity=spec.severity,
                    value=float(value),
                    threshold=spec.threshold,
                    ts=now,
                    ingress_ts=ingress,
                    episode=int(episode),
                    dimension="account",
                    attributes={
                        "shard": self.shard,
                        "group_path": self.book.group_paths[row],
                        "equity": float(figures.equity[row]),
                        "margin": float(figures.margin[row]),
                        "available": float(figures.available[row]),
                        "risk_degree": float(figures.risk_degree[row]),
                        "instruments": self.book.instruments_held(row),
                        "description": spec.description,
                        "rule_kind": spec.kind,
                        **({"evidence": evidence} if evidence is not None else {}),
                    },
                    action=dict(spec.action) if spec.action else None,
                )
            )
        return out
