"""KPIs of the closed loop, from the journal: did every event that needed action get one, and how
fast did each step come?

- closed-loop rate (闭环处置率): events that needed action (an alert with a proposal, or a
  proposal made by hand) whose proposals were all closed with at least one executed and verified
  (`done`) and none failed or expired, over all such events except the moot ones (every proposal
  `moot`: the account no longer breached when the action would run, so nothing needed doing).
  A proposal rejected by a person is closed but not executed: it counts against the rate.
  Outcomes are reported one by one: done, moot, failed, expired (no decision in time: a
  `rejected` close whose reason is EXPIRED), rejected, open;
- time from the data entering the system (the alert's `ingress_ts`) to the first delivery of a
  notification, to the acknowledgement, to the deciding decision and to execution (the last fill,
  or the closing of an action without orders), as p50 / p95 / max in seconds;
- arrival within 60 s: alerts whose first notification was delivered within 60 s of the data.

The Ray dashboard shows the live counterparts (fengkong_closed_loop_rate,
fengkong_proposal_to_decision_s, fengkong_decision_to_close_ms, fengkong_alert_to_delivery_ms).
"""

from __future__ import annotations

import collections
from typing import Any, TypeVar

import numpy as np

from infra.audit import AuditStore
from rules.execution.outcomes import closed_loop_rate, event_outcome, proposal_outcome
from rules.journal_records import (
    AlertAcked,
    AlertRecord,
    DecisionRecord,
    JournalRecord,
    OrderReport,
    ProposalClosed,
    ProposalRecord,
)

R = TypeVar("R", bound=JournalRecord)
DELIVERED = "notification.delivered"  # the Notifier's kind (its records are its own to define)

AFTER_S = 86_400.0  # consequences of an alert are looked for this long after the window
WITHIN_S = 60.0


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    arr = np.asarray(values, dtype=float)
    return {
        "n": int(arr.size),
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
        "max": round(float(arr.max()), 3),
    }


def _first_by_alert(records: list[dict[str, Any]]) -> dict[str, float]:
    """The first time each alert was mentioned (by `alert_ids`, or `alert_id`)."""
    first: dict[str, float] = {}
    for r in records:
        ids = r.get("alert_ids") or ([r["alert_id"]] if r.get("alert_id") else [])
        for a in ids:
            if a not in first or r["ts"] < first[a]:
                first[a] = r["ts"]
    return first


def outcome(rec: ProposalClosed | None) -> str:
    """A proposal's outcome as the KPIs count it: its closed state, `expired` told apart from a
    rejection by a person, `open` while not closed (rules.execution.outcomes, which the live
    gauge uses too)."""
    return proposal_outcome(None, "") if rec is None else proposal_outcome(rec.state, rec.reason)


def _typed(store: AuditStore, cls: type[R], since: float, until: float) -> list[R]:
    return [cls.from_record(r) for r in store.query(kind=cls.KIND, since=since, until=until)]


def compute_kpis(store: AuditStore, since: float, until: float) -> dict[str, Any]:
    """KPIs of the alerts (and hand-made proposals) stamped within [since, until]."""
    horizon = until + AFTER_S
    alerts = _typed(store, AlertRecord, since, until)
    proposals = _typed(store, ProposalRecord, since, horizon)
    decisions = _typed(store, DecisionRecord, since, horizon)
    closed = {r.ref: r for r in _typed(store, ProposalClosed, since, horizon)}
    delivered = _first_by_alert(store.query(kind=DELIVERED, since=since, until=horizon))
    acked = _first_by_alert([r.to_record() for r in _typed(store, AlertAcked, since, horizon)])
    fills: dict[str, float] = {}
    for rep in _typed(store, OrderReport, since, horizon):
        if rep.status in ("filled", "partially_filled") and rep.proposal_id:
            fills[rep.proposal_id] = max(fills.get(rep.proposal_id, 0.0), rep.ts)
    deciding: dict[str, float] = {}
    for d in decisions:
        if d.complete and d.ref not in deciding:
            deciding[d.ref] = d.ts

    alert_ids = {a.ref for a in alerts}
    by_alert: dict[str, list[ProposalRecord]] = collections.defaultdict(list)
    manual: list[ProposalRecord] = []
    for p in proposals:
        if p.alert_id in alert_ids:
            by_alert[p.alert_id].append(p)
        elif not p.alert_id and since <= p.ts <= until:
            manual.append(p)
    events = [(a.ref, a.ingress_ts or a.ts, by_alert[a.ref]) for a in alerts]
    events = [e for e in events if e[2]] + [(p.ref, p.ts, [p]) for p in manual]

    states: collections.Counter = collections.Counter()
    events_by: collections.Counter = collections.Counter()
    t_decide, t_exec = [], []
    for _eid, t0, props in events:
        pids = [p.ref for p in props]
        outs = [outcome(closed.get(pid)) for pid in pids]
        states.update(outs)
        events_by[event_outcome(outs)] += 1
        decided = [deciding[p] for p in pids if p in deciding]
        if decided:
            t_decide.append(min(decided) - t0)
        done = [
            fills.get(p) or closed[p].ts
            for p in pids
            if p in closed and closed[p].state in ("done", "failed")
        ]
        if done:
            t_exec.append(max(done) - t0)
    t_deliver = [delivered[a.ref] - (a.ingress_ts or a.ts) for a in alerts if a.ref in delivered]
    t_ack = [acked[a.ref] - (a.ingress_ts or a.ts) for a in alerts if a.ref in acked]
    within = sum(1 for t in t_deliver if t <= WITHIN_S)
    needed = len(events) - events_by["moot"]
    closed_events = events_by["done"]
    rate = closed_loop_rate(events_by.elements())
    return {
        "since": since,
        "until": until,
        "alerts": len(alerts),
        "needed_action": needed,
        "closed": closed_events,
        "closed_loop_rate": round(rate, 6) if rate is not None else None,
        "event_outcomes": dict(events_by),
        "proposals": sum(states.values()),
        "proposal_states": dict(states),
        "executed": states.get("done", 0),  # executed and verified, nothing else
        "moot": states.get("moot", 0),
        "failed": states.get("failed", 0),
        "expired": states.get("expired", 0),
        "time_to_first_delivery_s": _stats(t_deliver),
        "time_to_ack_s": _stats(t_ack),
        "time_to_decision_s": _stats(t_decide),
        "time_to_execution_s": _stats(t_exec),
        "delivered_within_60s": round(within / len(alerts), 6) if alerts else None,
    }
