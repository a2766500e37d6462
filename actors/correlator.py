"""Correlator actor: risk events from every dimension in, alerts and proposals out.

Per batch of events: journal them; match the composite rules (rules.engine.kinds.composite:
events of several dimensions within a window, joined on keys); turn every event into an alert
whose id is derived from (rule, key, trading day, episode), so a retried call or a replayed
shard makes no second alert; then run the hygiene pipeline (rules.engine.hygiene: dedup →
inhibit → silence → repeat → group). What a stage stops is journaled as an alert with its
reason and neither notifies nor proposes; what passes proposes its action to the Executor at
once and waits in its group, and a timer thread sends each due group to the Notifier in one
`notify(alerts)` call, every alert carrying `attributes["group"]` (id, key, size, keys).

Silences are added and expired here (`fengkong silence ...`), journaled durably before they
take effect, and read back from the journal by a restarted Correlator, like the rule set.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS, JournalSender, entry
from actors.context import Context
from actors.handover import Handovers
from actors.rule_host import bundle_of, start_ruleset
from actors.shell import ActorShell
from infra import metrics
from infra.stats import LatencyRing
from rules.engine.alerts import (
    alert_journal_record,
    alert_labels,
    alert_title,
    make_alert,
    proposal_for,
    trading_day,
)
from rules.engine.hygiene import Item, Pipeline, Silences, new_silence
from rules.engine.hygiene import Silence as SilenceRecord
from rules.engine.kinds import kind_of
from rules.engine.kinds.composite import CompositeMatcher
from rules.engine.resume import grouped_alerts, restore, resume
from rules.engine.spec import RuleSet
from rules.model import ActionProposal, Alert, RiskEvent

__all__ = ["Correlator", "alert_title", "make_alert", "trading_day"]

FLUSH_EVERY_S = 0.05
GROUP_KEYS_SHOWN = 200
SILENCE_KINDS = ("silence.added", "silence.expired")
ACCEPTED_KIND = "notification.accepted"  # the Notifier took an alert on (ref = alert id)


@dataclass(frozen=True)
class CorrelatorSettings:
    flush_every_s: float = FLUSH_EVERY_S  # how often due groups go to the Notifier
    recent_alerts: int = 10_000  # alerts kept for `alerts()`
    resume_window_s: float = 6 * 3600.0  # journal read back for pending groups on restart


@ray.remote(**ACTOR_OPTIONS)
class Correlator(ActorShell):
    def __init__(
        self,
        settings: CorrelatorSettings = CorrelatorSettings(),
        *,
        context: Context | None = None,
        notifier: Any = None,
        executor: Any = None,
        audit: Any = None,
        rules: Any = None,
    ) -> None:
        super().__init__("Correlator", context)
        self.settings = settings
        self.notifier = notifier
        self.executor = executor
        self.audit = audit
        self._lock = threading.RLock()
        self.journal = JournalSender("Correlator")
        self.handovers = Handovers()  # groups sent to the Notifier (drain)
        ruleset, _rule_context = start_ruleset(rules, audit)
        self.silences = Silences()
        self.matcher = CompositeMatcher()
        self.ruleset = RuleSet()
        self.pipeline = Pipeline(ruleset.hygiene, ruleset.inhibit, self.silences, self._repeat_of)
        self._install(ruleset)
        self._recover_silences()
        self._unsent: list[list[Alert]] = []
        self._recover_groups()
        self.recent: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=settings.recent_alerts
        )
        self.latency = LatencyRing()
        self.fire_latency = LatencyRing()  # data in → rule fired (in the shard)
        self.transit_latency = LatencyRing()  # rule fired → correlator
        self.batch_ms = LatencyRing()  # time to handle one batch of events
        self._m_alerts = self.metric(
            "counter", "alerts_total", "alerts raised", tag_keys=("actor", "severity")
        )
        self._m_latency = self.metric(
            "histogram",
            "tick_to_alert_ms",
            "from data entering the system to its alert",
            boundaries=metrics.LATENCY_MS_BUCKETS,
        )
        self.every(settings.flush_every_s, self._flush_round, "flush")

    # ---- rule set ---------------------------------------------------------------------------

    def _install(self, ruleset: RuleSet) -> dict[str, Any]:
        composites = [r for r in ruleset.rules if kind_of(r.kind).place(r) == "correlator"]
        before = {r.id for r in self.ruleset.rules if r.kind == "composite"}
        self.matcher.replace(composites)
        self.pipeline.configure(ruleset.hygiene, ruleset.inhibit, self._repeat_of)
        self.ruleset = ruleset
        self._specs = ruleset.by_id()
        now_ids = {r.id for r in composites}
        return {"added": sorted(now_ids - before), "removed": sorted(before - now_ids)}

    def _repeat_of(self, rule_id: str) -> float:
        spec = self._specs.get(rule_id) if hasattr(self, "_specs") else None
        if spec is not None and spec.repeat_s is not None:
            return float(spec.repeat_s)
        return float(self.ruleset.hygiene.repeat_s)

    def set_rules(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Hot reload: composite rules that did not change keep their partial matches; the
        inhibition history and repeat intervals carry over."""
        ruleset = bundle_of(bundle)
        with self._lock:
            report = self._install(ruleset)
        self.counts["rule_reloads"] += 1
        return {"actor": "Correlator", "version": ruleset.version, **report}

    def ruleset_bundle(self) -> dict[str, Any]:
        return self.ruleset.to_bundle()

    def rules_info(self) -> dict[str, Any]:
        return {
            "actor": "Correlator",
            "version": self.ruleset.version,
            "rules": sorted(self.matcher.rules),
        }

    # ---- events -----------------------------------------------------------------------------

    def on_events(self, events: list[RiskEvent]) -> int:
        """Turn events into alerts (deduplicated); returns how many new alerts."""
        now = time.time()
        started = time.perf_counter()
        records: list[dict[str, Any]] = []
        proposals: list[ActionProposal] = []
        with self._lock:
            composite = self.matcher.on_events(events)
            stream = [*events, *composite]
            items: list[Item] = []
            for ev in stream:
                self.counts["events"] += 1
                records.append(
                    entry("risk_event", "Correlator", ev.key, ev.rule_id, ev.to_record())
                )
                alert = make_alert(ev, now)
                items.append(Item(alert, alert_labels(alert)))
            by_id = {id(it): ev for it, ev in zip(items, stream, strict=True)}
            passed = {id(it) for it in self.pipeline.admit(list(items), now)}
            fresh: list[Alert] = []
            for it in items:
                if it.reason == "DUPLICATE":
                    self.counts["duplicates"] += 1
                    continue
                a = it.alert
                fresh.append(a)
                rec = alert_journal_record(a)  # typed AlertRecord v2 (evidence field)
                if id(it) not in passed:
                    self.counts[f"suppressed_{it.reason.lower()}"] += 1
                    rec.update(suppressed=it.reason, suppressed_by=it.by)
                self.recent.append(rec)
                records.append(entry("alert", "Correlator", a.key, a.alert_id, rec, ts=now))
                ev = by_id[id(it)]
                if id(it) in passed and ev.action and ev.action.get("kind"):
                    proposals.append(proposal_for(a, ev, now))
            self.counts["composite_events"] += len(composite)
            if records:  # submitted before a flush can group them
                self._journal(records)
        if events:
            self.fire_latency.add([(ev.ts - ev.ingress_ts) * 1000 for ev in events])
            self.transit_latency.add([(now - ev.ts) * 1000 for ev in events])
        if fresh:
            lat = [(a.created_ts - a.ingress_ts) * 1000 for a in fresh]
            self.latency.add(lat)
            for a, ms in zip(fresh, lat, strict=True):
                self._m_alerts.inc(tags={"actor": "Correlator", "severity": a.severity})
                self._m_latency.observe(ms, tags={"actor": "Correlator"})
            self.counts["alerts"] += len(fresh)
        if self.executor is not None and proposals:
            self.counts["proposals"] += len(proposals)
            self.executor.on_proposals.remote(proposals)
        if self.ruleset.hygiene.group_wait_s <= 0:
            self.flush_groups()
        self.batch_ms.add((time.perf_counter() - started) * 1000)
        return len(fresh)

    # ---- groups -----------------------------------------------------------------------------

    def _flush_round(self) -> None:
        self.flush_groups()
        with self._lock:
            now = time.time()
            self.matcher.expire(now)
            self.pipeline.inhibit.expire(now)

    def flush_groups(self, flush_all: bool = False) -> int:
        """Send every due group to the Notifier in one call; returns alerts sent."""
        now = time.time()
        with self._lock:
            batches = self.pipeline.group.due(now, flush_all)
            out: list[Alert] = [a for batch in self._unsent for a in batch]
            self._unsent = []
            if not batches and not out:
                return 0
            self.handovers.begin()  # with the lock: drain never sees them in neither place
        sent = None
        try:
            sent = self._hand_over(batches, out, now)
        finally:
            self.handovers.done(sent)
        return len(out)

    def _hand_over(self, batches: list[Any], out: list[Alert], now: float) -> Any:
        records = []
        for b in batches:
            out.extend(grouped_alerts(b, GROUP_KEYS_SHOWN))
            body = {"alert_ids": [a.alert_id for a in b.alerts], "members": b.members,
                    "sequence": b.sequence, "size": len(b.alerts), "digest": b.digest}  # fmt: skip
            records.append(
                entry("alert.grouped", "Correlator", b.group_key, b.group_id, body, ts=now)
            )
        self.counts["groups_sent"] += len(batches)
        self.counts["alerts_notified"] += len(out)
        # Durable before the hand-over: a crash after it resends the batch (the Notifier
        # deduplicates it), a crash before it finds the alerts still pending (rules.engine.resume).
        try:
            if records:
                self._durable(records)
        except Exception as exc:  # journal down: still notify (a restart then re-derives less)
            self.failed("journal", exc)
        return self.notifier.notify.remote(out) if self.notifier is not None and out else None

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until no alert waits in a group (each comes due in its own time, none is sent
        early) and the Notifier took every group sent (tests, shutdown); False on timeout."""
        return self.handovers.wait(timeout, held=self._holding)

    def _holding(self) -> bool:
        with self._lock:
            return bool(self._unsent or self.pipeline.group.waiting())

    # ---- silences ---------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: list[str],
        created_by: str,
        comment: str,
        duration_s: float = 3600.0,
        starts_ts: float | None = None,
        ends_ts: float | None = None,
    ) -> dict[str, Any]:
        """Validate, journal (durably) and activate a silence; returns it."""
        now = time.time()
        start = now if starts_ts is None else float(starts_ts)
        end = start + float(duration_s) if ends_ts is None else float(ends_ts)
        try:
            silence = new_silence(matchers, start, end, created_by, comment, now)
        except ValueError as exc:
            return {"error": "BAD_SILENCE", "detail": str(exc)}
        self._durable(
            [
                entry(
                    "silence.added", "Correlator", silence.id, silence.id, silence.to_dict(), ts=now
                )
            ]
        )
        with self._lock:
            self.silences.add(silence)
        return {**silence.to_dict(), "state": silence.state(now)}

    def expire_silence(self, silence_id: str, by: str) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            try:
                ended = self.silences.expire(silence_id, now)
            except KeyError as exc:
                return {"error": "UNKNOWN_SILENCE", "detail": str(exc.args[0])}
        self._durable(
            [
                entry(
                    "silence.expired",
                    "Correlator",
                    ended.id,
                    ended.id,
                    {"silence_id": ended.id, "by": by, "ends_ts": ended.ends_ts},
                    ts=now,
                )
            ]
        )
        return {**ended.to_dict(), "state": ended.state(now), "expired_by": by}

    def list_silences(self, include_expired: bool = False) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            return [
                {**s.to_dict(), "state": s.state(now)}
                for s in self.silences.listed(now, include_expired)
            ]

    def _recover_silences(self) -> None:
        if self.audit is None:
            return
        [records] = self._read_journal("resume_silences", {"kinds": list(SILENCE_KINDS)})
        for rec in records:
            if rec["kind"] == "silence.added":
                self.silences.add(SilenceRecord.from_dict(rec))
            elif rec["silence_id"] in self.silences.by_id:
                s = self.silences.by_id[rec["silence_id"]]
                self.silences.by_id[s.id] = dataclasses.replace(s, ends_ts=float(rec["ends_ts"]))

    def _recover_groups(self) -> None:
        """Rebuild the group stage from the journal: pending alerts back into their groups,
        batches handed over but never accepted by the Notifier sent again as they were."""
        if self.audit is None:
            return
        since = time.time() - self.settings.resume_window_s
        kinds = ("alert", "alert.grouped", ACCEPTED_KIND)
        alerts, grouped, accepted = self._read_journal(
            "resume_groups", *({"kind": k, "since": since} for k in kinds)
        )
        found = resume(alerts, grouped, (r["ref"] for r in accepted))
        with self._lock:
            self._unsent = restore(self.pipeline, found, alert_labels, GROUP_KEYS_SHOWN)
        self.counts["resumed_pending"] += len(found.pending)
        self.counts["resumed_unsent"] += len(found.unsent)

    def _read_journal(self, what: str, *queries: dict[str, Any]) -> list[Any]:
        """A restart's reads wait for the journal (its node may be coming back): starting
        without the silences or the pending groups would leave their alerts unsent."""
        delay = 0.5
        while True:
            try:
                ray.get(self.audit.flush.remote(), timeout=30)
                return ray.get([self.audit.query.remote(**q) for q in queries], timeout=60)
            except (ray.exceptions.RayError, TimeoutError) as exc:  # GetTimeoutError is both
                self.failed(what, exc)
                time.sleep(delay)
                delay = min(2 * delay, 5.0)

    def _journal(self, records: list[dict[str, Any]], durable: bool = False) -> Any:
        """Send records numbered per sender (actors.common.JournalSender: `audit verify` finds
        a gap)."""
        return None if self.audit is None else self.journal.send(self.audit, records, durable)

    def _durable(self, records: list[dict[str, Any]]) -> None:
        if self.audit is not None:
            ray.get(self._journal(records, durable=True), timeout=30)

    # ---- reads ------------------------------------------------------------------------------

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest alerts; a suppressed one says why (`suppressed`, `suppressed_by`)."""
        return list(self.recent)[-limit:]

    def figures(self) -> dict[str, Any]:
        with self._lock:
            waiting = self.pipeline.group.waiting()
            pending = self.matcher.pending()
        return {
            "ruleset_version": self.ruleset.version,
            "groups_waiting": waiting,
            "composite_partial": pending,
            "tick_to_alert_ms": self.latency.percentiles((50, 99)),
            "data_to_rule_ms": self.fire_latency.percentiles((50, 99)),
            "rule_to_correlator_ms": self.transit_latency.percentiles((50, 99)),
            "batch_ms": self.batch_ms.percentiles((50, 99)),
            "latency_samples": self.latency.count,
        }

    def reset_latency(self) -> None:
        """Start latency figures afresh (benchmarks: after loading and warm-up)."""
        self.latency = LatencyRing()
        self.fire_latency = LatencyRing()
        self.transit_latency = LatencyRing()

    def latencies_ms(self) -> list[float]:
        return self.latency.values().tolist()
