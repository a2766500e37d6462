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
from rules.journal_records import (
    REGISTRY,
    AccountMark,
    AlertAcked,
    AlertRecord,
    ApprovalEscalated,
    DecisionRecord,
    MarginCallRecord,
    OrderCancel,
    OrderReport,
    OrderSent,
    PlanRecord,
    ProposalClosed,
    ProposalRecord,
    Refusal,
    RiskEventRecord,
    Trade,
    TradingState,
    parse,
)

AFTER_S = 3600.0  # how long after an alert its consequences are looked for
CHART_BEFORE_S = 120.0

STEP_OF_KIND = {
    RiskEventRecord.KIND: "trigger",
    AlertRecord.KIND: "alert",
    "notification.queued": "notification queued",
    "notification.delivered": "notification delivered",
    "notification.failed": "notification failed",
    "notification.failover": "notification failover",
    AlertAcked.KIND: "acknowledged",
    ProposalRecord.KIND: "proposal",
    DecisionRecord.KIND: "decision",
    Refusal.KIND: "refusal",
    ApprovalEscalated.KIND: "escalated",
    PlanRecord.KIND: "plan",
    OrderSent.KIND: "order",
    OrderCancel.KIND: "cancel",
    MarginCallRecord.KIND: "margin call",
    TradingState.KIND: "trading state",
    ProposalClosed.KIND: "closed",
}


def _detail(r: dict[str, Any]) -> str:
    """One line for a timeline: from the typed record of its kind (rules.journal_records)."""
    if r["kind"].startswith("notification."):  # the Notifier's records
        extra = f" ({r.get('error')})" if r.get("error") else ""
        return f"{r['key']} → {r.get('recipient') or '-'}{extra}"
    if r["kind"] not in REGISTRY:
        return r.get("reason", "") or ""
    t = parse(r)
    if isinstance(t, RiskEventRecord):
        return f"{t.rule_id or t.ref}: value {t.value:.4g} > {t.threshold:.4g}"
    if isinstance(t, AlertRecord):
        return f"[{t.severity}] {t.title}"
    if isinstance(t, AlertAcked):
        return f"by {t.by or '?'} via {t.via or '?'}"
    if isinstance(t, ProposalRecord):
        return (
            f"{t.proposal_kind} to {t.target_risk_degree:.0%} by {t.proposed_by}; "
            f"group {t.group_id}; {t.preview.get('explanation', '')}"
        )
    if isinstance(t, DecisionRecord):
        return f"{t.decision} by {t.user} via {t.via} at stage '{t.stage_name}'"
    if isinstance(t, Refusal):
        return f"{t.user}: {t.reason}"
    if isinstance(t, PlanRecord):
        skipped = "; ".join(f"{s['instrument']}: {s['reason']}" for s in t.skipped)
        return t.explanation + (f" — skipped {skipped}" if skipped else "")
    if isinstance(t, OrderSent):
        return (
            f"{t.ref} {t.direction} {t.offset} {t.volume:g} {t.instrument} @ {t.limit_price:g} "
            f"— {t.reason}"
        )
    if isinstance(t, OrderReport):
        return f"{t.ref} {t.status} {t.filled or 0:g} @ {t.price or 0:g} {t.reason}"
    if isinstance(t, Trade):
        return f"{t.direction} {t.offset} {t.volume:g} {t.instrument} @ {t.price:g}"
    if isinstance(t, ProposalClosed):
        rd = t.risk_degree_after
        after = f"; risk degree after {rd:.2%}" if isinstance(rd, (int, float)) else ""
        return f"{t.state} {t.reason}{after}"
    if isinstance(t, AccountMark):
        return f"risk degree {t.risk_degree:.2%} ({t.phase})"
    return r.get("reason", "") or ""


def _step(r: dict[str, Any]) -> str:
    if r["kind"] == OrderReport.KIND:
        return "fill" if r.get("status") in ("filled", "partially_filled") else "order report"
    if r["kind"] == Trade.KIND:
        return "trade"
    return STEP_OF_KIND.get(r["kind"], r["kind"])


def _mentions(r: dict[str, Any], alert_id: str) -> bool:
    return alert_id in (r.get("alert_ids") or ()) or r.get("ref") == alert_id


def replay_alert(store: AuditStore, alert_id: str) -> dict[str, Any]:
    """Everything the journal knows about one alert, as a timeline, figures and series."""
    found = store.query(kind=AlertRecord.KIND, ref=alert_id)
    if not found:
        raise KeyError(f"no alert {alert_id!r} in the journal")
    alert = found[0]
    account, t_alert = alert["key"], alert["ts"]
    until = t_alert + AFTER_S
    trigger = [
        r
        for r in store.query(
            kind=RiskEventRecord.KIND,
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
        for r in store.query(kind=AlertAcked.KIND, since=t_alert - 1, until=until)
        if _mentions(r, alert_id)
    ]
    proposals = [
        r
        for r in store.query(kind=ProposalRecord.KIND, key=account, since=t_alert - 1, until=until)
        if r.get("alert_id") == alert_id
    ]
    pids = {r["ref"] for r in proposals}
    mine = store.query(key=account, since=t_alert - 1, until=until)
    refs = set(pids) | {
        r["ref"] for r in mine if r["kind"] == OrderSent.KIND and r.get("proposal_id") in pids
    }
    action = [
        r
        for r in mine
        if r["ref"] in refs and r["kind"] not in (ProposalRecord.KIND, AccountMark.KIND)
    ]
    records = sorted(trigger + [alert] + notices + acks + proposals + action, key=lambda r: r["ts"])
    start = trigger[0]["ingress_ts"] if trigger and trigger[0].get("ingress_ts") else t_alert
    if trigger:
        records.insert(
            0, {**trigger[0], "ts": start, "kind": RiskEventRecord.KIND, "_step": "data in"}
        )
    timeline = [
        {"ts": r["ts"], "t_plus_s": round(r["ts"] - start, 3), "step": r.get("_step") or _step(r),
         "kind": r["kind"], "seq": r.get("seq"), "detail": _detail(r)}
        for r in records
    ]  # fmt: skip
    closed = [r for r in action if r["kind"] == ProposalClosed.KIND]
    end = max([r["ts"] for r in records] + [t_alert])
    marks = store.query(
        kind=AccountMark.KIND, key=account, since=t_alert - CHART_BEFORE_S, until=end + 120
    )
    series = account_series(
        trigger + marks + [r for r in action if r["kind"] == Trade.KIND] + closed
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
        if k == RiskEventRecord.KIND and isinstance(r.get("attributes"), dict):
            rd = r["attributes"].get("risk_degree", r.get("value"))
            if isinstance(rd, (int, float)):
                risk.append((r["ts"], float(rd)))
        elif k == AccountMark.KIND:
            risk.append((r["ts"], float(r["risk_degree"])))
            for inst, p in (r.get("prices") or {}).items():
                prices.setdefault(inst, []).append((r["ts"], float(p)))
        elif k == ProposalClosed.KIND and isinstance(r.get("risk_degree_after"), (int, float)):
            risk.append((r["ts"], float(r["risk_degree_after"])))
            for inst, p in (r.get("prices_after") or {}).items():
                prices.setdefault(inst, []).append((r["ts"], float(p)))
        elif k == Trade.KIND and r.get("price"):
            prices.setdefault(r["instrument"], []).append((r["ts"], float(r["price"])))
    return {"risk_degree": risk, "prices": prices}


def replay_account(store: AuditStore, account: str, since: float, until: float) -> dict[str, Any]:
    """Every record of one account in a time range, with its series."""
    records = store.search(account=account, since=since, until=until)
    timeline = [
        {"ts": r["ts"], "t_plus_s": round(r["ts"] - since, 3), "step": _step(r), "kind": r["kind"],
         "seq": r["seq"], "detail": _detail(r)}
        for r in records
        if r["kind"] != AccountMark.KIND
    ]  # fmt: skip
    return {
        "kind": "replay.account",
        "account_id": account,
        "since": since,
        "until": until,
        "timeline": timeline,
        "alerts": [r["ref"] for r in records if r["kind"] == AlertRecord.KIND],
        "series": account_series(records),
    }
