"""KPIs of the closed loop, from the journal: did every event that needed action get one, and how
fast did each step come?

- closed-loop rate: events that needed action (an alert with a proposal, or a proposal made by
  hand) whose proposals were all closed — executed and verified, failed with a reason, rejected
  or expired — over all such events;
- time from the data entering the system (the alert's `ingress_ts`) to the first delivery of a
  notification, to the acknowledgement, to the deciding decision and to execution (the last fill,
  or the closing of an action without orders), as p50 / p95 / max in seconds;
- arrival within 60 s: alerts whose first notification was delivered within 60 s of the data.

The Ray dashboard shows the live counterparts (fengkong_closed_loop_rate,
fengkong_proposal_to_decision_s, fengkong_decision_to_close_ms, fengkong_alert_to_delivery_ms).
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from infra.audit import AuditStore

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
    first: dict[str, float] = {}
    for r in records:
        ids = r.get("alert_ids") or ([r["alert_id"]] if r.get("alert_id") else [])
        for a in ids:
            if a not in first or r["ts"] < first[a]:
                first[a] = r["ts"]
    return first


def compute_kpis(store: AuditStore, since: float, until: float) -> dict[str, Any]:
    """KPIs of the alerts (and hand-made proposals) stamped within [since, until]."""
    horizon = until + AFTER_S
    alerts = store.query(kind="alert", since=since, until=until)
    proposals = store.query(kind="proposal", since=since, until=horizon)
    decisions = store.query(kind="decision", since=since, until=horizon)
    closed = {r["ref"]: r for r in store.query(kind="proposal_closed", since=since, until=horizon)}
    delivered = _first_by_alert(
        store.query(kind="notification.delivered", since=since, until=horizon)
    )
    acked = _first_by_alert(store.query(kind="alert.acked", since=since, until=horizon))
    fills: dict[str, float] = {}
    for r in store.query(kind="order_report", since=since, until=horizon):
        if r.get("status") in ("filled", "partially_filled") and r.get("proposal_id"):
            fills[r["proposal_id"]] = max(fills.get(r["proposal_id"], 0.0), r["ts"])
    deciding: dict[str, float] = {}
    for r in decisions:
        if r.get("complete") and r["ref"] not in deciding:
            deciding[r["ref"]] = r["ts"]

    alert_ids = {a["ref"] for a in alerts}
    by_alert: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    manual: list[dict[str, Any]] = []
    for p in proposals:
        if p.get("alert_id") in alert_ids:
            by_alert[p["alert_id"]].append(p)
        elif not p.get("alert_id") and since <= p["ts"] <= until:
            manual.append(p)
    events = [(a["ref"], a.get("ingress_ts") or a["ts"], by_alert[a["ref"]]) for a in alerts]
    events = [e for e in events if e[2]] + [(p["ref"], p["ts"], [p]) for p in manual]

    states: collections.Counter = collections.Counter()
    t_decide, t_exec, closed_events = [], [], 0
    for _eid, t0, props in events:
        pids = [p["ref"] for p in props]
        if all(pid in closed for pid in pids):
            closed_events += 1
        for pid in pids:
            states[closed[pid]["state"] if pid in closed else "open"] += 1
        decided = [deciding[p] for p in pids if p in deciding]
        if decided:
            t_decide.append(min(decided) - t0)
        done = [
            fills.get(p) or closed[p]["ts"]
            for p in pids
            if p in closed and closed[p]["state"] in ("done", "failed")
        ]
        if done:
            t_exec.append(max(done) - t0)
    t_deliver = [delivered[a["ref"]] - (a.get("ingress_ts") or a["ts"]) for a in alerts
                 if a["ref"] in delivered]  # fmt: skip
    t_ack = [
        acked[a["ref"]] - (a.get("ingress_ts") or a["ts"]) for a in alerts if a["ref"] in acked
    ]
    within = sum(1 for t in t_deliver if t <= WITHIN_S)
    needed = len(events)
    return {
        "since": since,
        "until": until,
        "alerts": len(alerts),
        "needed_action": needed,
        "closed": closed_events,
        "closed_loop_rate": round(closed_events / needed, 6) if needed else None,
        "proposals": sum(states.values()),
        "proposal_states": dict(states),
        "executed": states.get("done", 0) + states.get("failed", 0),
        "time_to_first_delivery_s": _stats(t_deliver),
        "time_to_ack_s": _stats(t_ack),
        "time_to_decision_s": _stats(t_decide),
        "time_to_execution_s": _stats(t_exec),
        "delivered_within_60s": round(within / len(alerts), 6) if alerts else None,
    }
