"""The backtest's output: events through the Correlator's hygiene into alerts.jsonl lines.

Split from rules.engine.backtest (the replay) so the output format sits in one place: lines are
deterministic (data time only), ids are the live ones (rules.engine.alerts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from rules.engine.alerts import alert_labels, make_alert, trading_day
from rules.engine.hygiene import Item, Pipeline, Silences
from rules.engine.spec import RuleSet
from rules.engine.template import Fired
from rules.model import RiskEvent


def alerts_of(ruleset: RuleSet, events: Iterable[RiskEvent]) -> list[dict[str, Any]]:
    """Alert lines of time-ordered events: grouped per data time, admitted by the hygiene
    pipeline (minus silences, an operator's), duplicates left out."""
    h = ruleset.hygiene
    specs = ruleset.by_id()

    def repeat_of(rule_id: str) -> float:
        s = specs.get(rule_id)
        return float(s.repeat_s) if s is not None and s.repeat_s is not None else h.repeat_s

    repeat: Callable[[str], float] = repeat_of
    pipeline = Pipeline(h, ruleset.inhibit, Silences(), repeat)
    out: list[dict[str, Any]] = []
    batch: list[tuple[RiskEvent, Item]] = []

    def drain() -> None:
        if not batch:
            return
        items = [it for _, it in batch]
        pipeline.admit(items, batch[0][0].ts)
        for ev, it in batch:
            if it.reason != "DUPLICATE":
                out.append(alert_record(ev, it.alert.alert_id, it.reason))
        batch.clear()

    for ev in events:
        if batch and ev.ts != batch[0][0].ts:
            drain()
        a = make_alert(ev, ev.ts)
        batch.append((ev, Item(a, alert_labels(a))))
    drain()
    return out


def alert_record(ev: RiskEvent, alert_id: str, suppressed: str = "") -> dict[str, Any]:
    """One line of alerts.jsonl: deterministic (data time only)."""
    rec: dict[str, Any] = {
        "time": beijing_iso(ev.ts),
        "ts": round(ev.ts, 3),
        "trading_day": trading_day(ev.ts),
        "rule": ev.rule_id,
        "key": ev.key,
        "severity": ev.severity,
        "value": ev.value,
        "threshold": ev.threshold,
        "kind": ev.kind,
        "dimension": ev.dimension,
        "episode": ev.episode,
        "alert_id": alert_id,
    }
    if suppressed:
        rec["suppressed"] = suppressed
    if isinstance(ev.attributes.get("evidence"), dict):  # adaptive rules: score and baseline
        rec["evidence"] = ev.attributes["evidence"]
    if ev.dimension == "composite":
        rec["components"] = [(c["rule_id"], c["key"]) for c in ev.attributes.get("components", [])]
    return rec


def beijing_iso(ts: float) -> str:
    ms = int(round(ts * 1000))
    t = time.gmtime(ms // 1000 + 8 * 3600)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms % 1000:03d}+08:00"


def account_events(book: Any, fired: list[tuple[float, Fired]]) -> list[RiskEvent]:
    """RiskEvents of the fired account rules, as an AccountShard raises them."""
    out = []
    for ts, f in fired:
        spec = f.spec
        kind = (
            f"account.{spec.metric}"
            if spec.kind in ("threshold", "session")
            else f"account.{spec.kind}.{spec.metric}"
        )
        for j, (row, value, episode) in enumerate(zip(
            f.rows.tolist(), f.values.tolist(), f.episodes.tolist(), strict=True
        )):  # fmt: skip
            attrs = {"group_path": book.group_paths[row], "instruments": book.instruments_held(row)}
            evidence = f.evidence(j)
            if evidence is not None:
                attrs["evidence"] = evidence
            out.append(RiskEvent(
                rule_id=spec.id, kind=kind, key=book.account_ids[row], severity=spec.severity,
                value=float(value), threshold=spec.threshold, ts=ts, ingress_ts=ts,
                episode=int(episode), dimension="account", attributes=attrs,
                action=dict(spec.action) if spec.action else None,
            ))  # fmt: skip
    return out
