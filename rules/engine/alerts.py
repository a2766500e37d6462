"""From a RiskEvent to its Alert: the deterministic id and the title a person reads.

The id comes from (rule, key, trading day, episode): the same crossing reported twice (a
retried call, a replayed shard) is one alert, the next genuine crossing another — live in the
Correlator and in the backtest alike.
"""

from __future__ import annotations

import time
from typing import Any

from rules.engine.matchers import labels_of
from rules.journal_records import AlertRecord
from rules.model import ActionProposal, Alert, RiskEvent, stable_id


def trading_day(ts: float) -> str:
    """Night trading (from 18:00 Beijing time) belongs to the next weekday: Friday night is
    Monday's. (Exchange holidays need the session calendar, `rules.sessions`.)"""
    beijing = ts + 8 * 3600
    if time.gmtime(beijing).tm_hour >= 18:
        beijing += 6 * 3600
    while time.gmtime(beijing).tm_wday >= 5:  # Saturday, Sunday
        beijing += 24 * 3600
    return time.strftime("%Y%m%d", time.gmtime(beijing))


def next_trading_day(day: str) -> str:
    """The weekday after `day` (YYYYMMDD); exchange holidays need rules.sessions."""
    t = time.mktime(time.strptime(day, "%Y%m%d")) + 36 * 3600
    while time.localtime(t).tm_wday >= 5:
        t += 24 * 3600
    return time.strftime("%Y%m%d", time.localtime(t))


def alert_id(ev: RiskEvent) -> str:
    return stable_id(ev.rule_id, ev.key, trading_day(ev.ts), ev.episode)


def alert_title(event: RiskEvent) -> str:
    metric = event.kind.split(".", 1)[-1]
    evidence = event.attributes.get("evidence")
    if isinstance(evidence, dict) and evidence.get("text"):  # an adaptive rule: say against what
        return f"{event.key} {event.rule_id}: {evidence['text']}"
    if metric == "risk_degree":
        return f"账户 {event.key} 风险度 {event.value:.1%} 超过 {event.threshold:.0%} (risk degree)"
    if event.kind == "composite":
        parts = ", ".join(c["rule_id"] for c in event.attributes.get("components", []))
        joined = event.attributes.get("joined_on")
        return f"{event.key} {event.rule_id}: {parts} (joined on {joined})"
    return f"{event.key} {metric} {event.value:,.4g} crossed {event.threshold:,.4g}"


def make_alert(ev: RiskEvent, now: float) -> Alert:
    return Alert(
        alert_id=alert_id(ev),
        rule_id=ev.rule_id,
        key=ev.key,
        severity=ev.severity,
        title=alert_title(ev),
        value=ev.value,
        threshold=ev.threshold,
        created_ts=now,
        ingress_ts=ev.ingress_ts,
        dimension=ev.dimension,
        # the action rides along (not a label: a dict) so a page can name the proposal it makes
        attributes={
            **ev.attributes,
            "kind": ev.kind,
            **({"action": ev.action} if ev.action else {}),
        },
    )


def alert_journal_record(a: Alert) -> dict[str, Any]:
    """The journal payload of an alert (rules.journal_records.AlertRecord, v2): the alert's
    fields and, for an adaptive rule, its evidence as a field of its own."""
    rec = a.to_record()
    evidence = a.attributes.get("evidence")
    if isinstance(evidence, dict):
        rec["evidence"] = evidence
    rec["v"] = AlertRecord.VERSION
    return rec


def alert_labels(a: Alert) -> dict[str, str]:
    return labels_of(a.rule_id, a.key, a.severity, a.dimension, a.attributes)


def proposal_for(alert: Alert, ev: RiskEvent, now: float) -> ActionProposal:
    """The action an alert's rule asks for (`ev.action`), as the Executor's proposal: its id
    derives from the alert's, so a replayed alert proposes nothing twice."""
    assert ev.action is not None
    return ActionProposal(
        proposal_id=stable_id("proposal", alert.alert_id, ev.action["kind"]),
        alert_id=alert.alert_id,
        account_id=ev.key,
        kind=ev.action["kind"],
        target_risk_degree=float(ev.action.get("target", 0.8)),
        created_ts=now,
        reason=alert.title,
    )
