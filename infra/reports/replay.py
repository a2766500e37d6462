"""Replay reports (复盘) from the journal alone: per alert, per account, per day.

The timeline of an alert runs trigger (the data entering the system, the rule firing) → alert →
notifications (queued, delivered, failed) → acknowledgement → proposal → decisions and refusals →
plan → orders → reports and fills → the action closed with the account's figures after. The
series for the charts come from the figures the system journaled: the risk event's value, the
Executor's `account_mark` records (risk degree, equity, margin, the last price of each held
contract), the fill prices and the figures at closing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from infra.audit import AuditStore

AFTER_S = 3600.0  # how long after an alert its consequences are looked for
CHART_BEFORE_S = 120.0

STEP_OF_KIND = {
    "risk_event": "trigger",
    "alert": "alert",
    "notification.queued": "notification queued",
    "notification.delivered": "notification delivered",
    "notification.failed": "notification failed",
    "notification.failover": "notification failover",
    "alert.acked": "acknowledged",
    "proposal": "proposal",
    "decision": "decision",
    "refusal": "refusal",
    "approval_escalated": "escalated",
    "plan": "plan",
    "order": "order",
    "order_cancel": "cancel",
    "margin_call": "margin call",
    "trading_state": "trading state",
    "proposal_closed": "closed",
}


def _detail(r: dict[str, Any]) -> str:
    k = r["kind"]
    if k == "risk_event":
        return f"{r.get('rule_id', r['ref'])}: value {r.get('value', 0):.4g} > {r.get('threshold', 0):.4g}"
    if k == "alert":
        return f"[{r.get('severity')}] {r.get('title', '')}"
    if k.startswith("notification."):
        extra = f" ({r.get('error')})" if r.get("error") else ""
        return f"{r['key']} → {r.get('recipient') or '-'}{extra}"
    if k == "alert.acked":
        return f"by {r.get('by', '?')} via {r.get('via', '?')}"
    if k == "proposal":
        prev = r.get("preview", {})
        return (
            f"{r.get('proposal_kind')} to {r.get('target_risk_degree', 0):.0%} by "
            f"{r.get('proposed_by')}; group {r.get('group_id')}; {prev.get('explanation', '')}"
        )
    if k == "decision":
        return f"{r.get('decision')} by {r.get('user')} via {r.get('via')} at stage '{r.get('stage_name')}'"
    if k == "refusal":
        return f"{r.get('user')}: {r.get('reason')}"
    if k == "plan":
        skipped = "; ".join(f"{s['instrument']}: {s['reason']}" for s in r.get("skipped", ()))
        return r.get("explanation", "") + (f" — skipped {skipped}" if skipped else "")
    if k == "order":
        return (
            f"{r['ref']} {r.get('direction')} {r.get('offset')} {r.get('volume'):g} "
            f"{r.get('instrument')} @ {r.get('limit_price'):g} — {r.get('reason', '')}"
        )
    if k == "order_report":
        return f"{r['ref']} {r.get('status')} {r.get('filled', 0):g} @ {r.get('price', 0):g} {r.get('reason', '')}"
    if k == "trade":
        return f"{r.get('direction')} {r.get('offset')} {r.get('volume'):g} {r.get('instrument')} @ {r.get('price'):g}"
    if k == "proposal_closed":
        rd = r.get("risk_degree_after")
        after = f"; risk degree after {rd:.2%}" if isinstance(rd, (int, float)) else ""
        return f"{r.get('state')} {r.get('reason', '')}{after}"
    if k == "account_mark":
        return f"risk degree {r.get('risk_degree', 0):.2%} ({r.get('phase')})"
    return r.get("reason", "") or ""


def _step(r: dict[str, Any]) -> str:
    if r["kind"] == "order_report":
        return "fill" if r.get("status") in ("filled", "partially_filled") else "order report"
    if r["kind"] == "trade":
        return "trade"
    return STEP_OF_KIND.get(r["kind"], r["kind"])


def _mentions(r: dict[str, Any], alert_id: str) -> bool:
    return alert_id in (r.get("alert_ids") or ()) or r.get("ref") == alert_id


def replay_alert(store: AuditStore, alert_id: str) -> dict[str, Any]:
    """Everything the journal knows about one alert, as a timeline, figures and series."""
    found = store.query(kind="alert", ref=alert_id)
    if not found:
        raise KeyError(f"no alert {alert_id!r} in the journal")
    alert = found[0]
    account, t_alert = alert["key"], alert["ts"]
    until = t_alert + AFTER_S
    trigger = [
        r
        for r in store.query(
            kind="risk_event",
            key=account,
            ref=alert["rule_id"],
            since=t_alert - 60,
            until=t_alert + 1,
        )  # fmt: skip
        if r["ts"] <= t_alert + 1e-6
    ][-1:]
    around = store.query(kind="notification.*", since=t_alert - 1, until=until)
    notices = [r for r in around if _mentions(r, alert_id)]
    acks = [
        r
        for r in store.query(kind="alert.acked", since=t_alert - 1, until=until)
        if _mentions(r, alert_id)
    ]
    proposals = [
        r
        for r in store.query(kind="proposal", key=account, since=t_alert - 1, until=until)
        if r.get("alert_id") == alert_id
    ]
    pids = {r["ref"] for r in proposals}
    mine = store.query(key=account, since=t_alert - 1, until=until)
    refs = set(pids) | {
        r["ref"] for r in mine if r["kind"] == "order" and r.get("proposal_id") in pids
    }
    action = [r for r in mine if r["ref"] in refs and r["kind"] not in ("proposal", "account_mark")]
    records = sorted(trigger + [alert] + notices + acks + proposals + action, key=lambda r: r["ts"])
    start = trigger[0]["ingress_ts"] if trigger and trigger[0].get("ingress_ts") else t_alert
    if trigger:
        records.insert(0, {**trigger[0], "ts": start, "kind": "risk_event", "_step": "data in"})
    timeline = [
        {"ts": r["ts"], "t_plus_s": round(r["ts"] - start, 3), "step": r.get("_step") or _step(r),
         "kind": r["kind"], "seq": r.get("seq"), "detail": _detail(r)}
        for r in records
    ]  # fmt: skip
    closed = [r for r in action if r["kind"] == "proposal_closed"]
    end = max([r["ts"] for r in records] + [t_alert])
    marks = store.query(
        kind="account_mark", key=account, since=t_alert - CHART_BEFORE_S, until=end + 120
    )
    series = account_series(
        trigger + marks + [r for r in action if r["kind"] in ("trade",)] + closed
    )
    after = closed[-1] if closed else {}
    return {
        "kind": "replay.alert",
        "alert_id": alert_id,
        "account_id": account,
        "rule_id": alert["rule_id"],
        "title": alert.get("title", ""),
        "severity": alert.get("severity", ""),
        "started": start,
        "timeline": timeline,
        "proposals": [
            {"proposal_id": r["ref"], "kind": r.get("proposal_kind"), "group_id": r.get("group_id")}
            for r in proposals
        ],
        "figures_after": {
            "state": after.get("state"),
            "reason": after.get("reason"),
            "risk_degree": after.get("risk_degree_after"),
            "equity": after.get("equity_after"),
            "margin": after.get("margin_after"),
            "positions": after.get("positions_after"),
        }
        if after
        else {},
        "series": series,
        "target": proposals[0].get("target_risk_degree") if proposals else None,
        "threshold": alert.get("threshold"),
    }


def account_series(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Risk degree and per-contract price points from journaled figures, in time order."""
    risk: list[tuple[float, float]] = []
    prices: dict[str, list[tuple[float, float]]] = {}
    for r in sorted(records, key=lambda r: r["ts"]):
        k = r["kind"]
        if k == "risk_event" and isinstance(r.get("attributes"), dict):
            rd = r["attributes"].get("risk_degree", r.get("value"))
            if isinstance(rd, (int, float)):
                risk.append((r["ts"], float(rd)))
        elif k == "account_mark":
            risk.append((r["ts"], float(r["risk_degree"])))
            for inst, p in (r.get("prices") or {}).items():
                prices.setdefault(inst, []).append((r["ts"], float(p)))
        elif k == "proposal_closed" and isinstance(r.get("risk_degree_after"), (int, float)):
            risk.append((r["ts"], float(r["risk_degree_after"])))
            for inst, p in (r.get("prices_after") or {}).items():
                prices.setdefault(inst, []).append((r["ts"], float(p)))
        elif k == "trade" and r.get("price"):
            prices.setdefault(r["instrument"], []).append((r["ts"], float(r["price"])))
    return {"risk_degree": risk, "prices": prices}


def replay_account(store: AuditStore, account: str, since: float, until: float) -> dict[str, Any]:
    """Every record of one account in a time range, with its series."""
    records = store.search(account=account, since=since, until=until)
    timeline = [
        {"ts": r["ts"], "t_plus_s": round(r["ts"] - since, 3), "step": _step(r), "kind": r["kind"],
         "seq": r["seq"], "detail": _detail(r)}
        for r in records
        if r["kind"] != "account_mark"
    ]  # fmt: skip
    return {
        "kind": "replay.account",
        "account_id": account,
        "since": since,
        "until": until,
        "timeline": timeline,
        "alerts": [r["ref"] for r in records if r["kind"] == "alert"],
        "series": account_series(records),
    }
