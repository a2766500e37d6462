"""Correlator actor: risk events from every dimension in, alerts and proposals out.

An alert's id is derived from (rule, key, trading day, episode), so the same crossing reported
twice (a retried call, a replayed shard) is one alert, and the next genuine crossing is another.
Alerts go to the Notifier and proposed actions to the Executor in one call per batch; every event
and alert is journaled.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS, entry
from infra import metrics
from infra.stats import LatencyRing
from rules.model import ActionProposal, Alert, RiskEvent, stable_id

DEDUP_MEMORY = 200_000


def trading_day(ts: float) -> str:
    """Night trading (from 18:00 Beijing time) belongs to the next day."""
    beijing = time.gmtime(
        ts + 8 * 3600 + (6 * 3600 if time.gmtime(ts + 8 * 3600).tm_hour >= 18 else 0)
    )
    return time.strftime("%Y%m%d", beijing)


def alert_title(event: RiskEvent) -> str:
    metric = event.kind.split(".", 1)[-1]
    if metric == "risk_degree":
        return f"账户 {event.key} 风险度 {event.value:.1%} 超过 {event.threshold:.0%} (risk degree)"
    return f"{event.key} {metric} {event.value:,.4g} crossed {event.threshold:,.4g}"


@ray.remote(**ACTOR_OPTIONS)
class Correlator:
    def __init__(self, notifier: Any = None, executor: Any = None, audit: Any = None) -> None:
        self.notifier = notifier
        self.executor = executor
        self.audit = audit
        self.seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.recent: collections.deque[Alert] = collections.deque(maxlen=10_000)
        self.latency = LatencyRing()
        self.fire_latency = LatencyRing()  # data in → rule fired (in the shard)
        self.transit_latency = LatencyRing()  # rule fired → correlator
        self.counts: collections.Counter = collections.Counter()
        self._m_alerts = metrics.counter(
            "alerts_total", "alerts raised", tag_keys=("actor", "severity")
        )
        self._m_latency = metrics.histogram(
            "tick_to_alert_ms",
            "from data entering the system to its alert",
            metrics.LATENCY_MS_BUCKETS,
        )

    def on_events(self, events: list[RiskEvent]) -> int:
        """Turn events into alerts (deduplicated); returns how many new alerts."""
        now = time.time()
        alerts: list[Alert] = []
        proposals: list[ActionProposal] = []
        records: list[dict[str, Any]] = []
        for ev in events:
            self.counts["events"] += 1
            records.append(entry("risk_event", "Correlator", ev.key, ev.rule_id, ev.to_record()))
            alert_id = stable_id(ev.rule_id, ev.key, trading_day(ev.ts), ev.episode)
            if alert_id in self.seen:
                self.counts["duplicates"] += 1
                continue
            self.seen[alert_id] = None
            if len(self.seen) > DEDUP_MEMORY:
                self.seen.popitem(last=False)
            alert = Alert(
                alert_id=alert_id,
                rule_id=ev.rule_id,
                key=ev.key,
                severity=ev.severity,
                title=alert_title(ev),
                value=ev.value,
                threshold=ev.threshold,
                created_ts=now,
                ingress_ts=ev.ingress_ts,
                dimension=ev.dimension,
                attributes=dict(ev.attributes),
            )
            alerts.append(alert)
            self.recent.append(alert)
            records.append(
                entry("alert", "Correlator", ev.key, alert_id, alert.to_record(), ts=now)
            )
            if ev.action and ev.action.get("kind"):
                proposal = ActionProposal(
                    proposal_id=stable_id("proposal", alert_id, ev.action["kind"]),
                    alert_id=alert_id,
                    account_id=ev.key,
                    kind=ev.action["kind"],
                    target_risk_degree=float(ev.action.get("target", 0.8)),
                    created_ts=now,
                    reason=alert.title,
                )
                proposals.append(proposal)
        if events:
            self.fire_latency.add([(ev.ts - ev.ingress_ts) * 1000 for ev in events])
            self.transit_latency.add([(now - ev.ts) * 1000 for ev in events])
        if alerts:
            lat = [(a.created_ts - a.ingress_ts) * 1000 for a in alerts]
            self.latency.add(lat)
            for a, ms in zip(alerts, lat, strict=True):
                self._m_alerts.inc(tags={"actor": "Correlator", "severity": a.severity})
                self._m_latency.observe(ms, tags={"actor": "Correlator"})
            self.counts["alerts"] += len(alerts)
        if self.audit is not None and records:
            self.audit.append.remote(records)
        if self.notifier is not None and alerts:
            self.notifier.notify.remote(alerts)
        if self.executor is not None and proposals:
            self.counts["proposals"] += len(proposals)
            self.executor.on_proposals.remote(proposals)
        return len(alerts)

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        return [a.to_record() for a in list(self.recent)[-limit:]]

    def stats(self) -> dict[str, Any]:
        return {
            **dict(self.counts),
            "tick_to_alert_ms": self.latency.percentiles((50, 99)),
            "data_to_rule_ms": self.fire_latency.percentiles((50, 99)),
            "rule_to_correlator_ms": self.transit_latency.percentiles((50, 99)),
            "latency_samples": self.latency.count,
        }

    def reset_latency(self) -> None:
        """Start latency figures afresh (benchmarks: after loading and warm-up)."""
        self.latency = LatencyRing()
        self.fire_latency = LatencyRing()
        self.transit_latency = LatencyRing()

    def latencies_ms(self) -> list[float]:
        return self.latency.values().tolist()
