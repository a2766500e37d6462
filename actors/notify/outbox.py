"""The outbox: each notification is a journal record before it is a request to a provider.

A `Pending` is one notification for one recipient on one channel. Its `notification.queued`
record carries everything needed to send it again (text, recipient, page), so a restarted
Notifier rebuilds the outbox from the journal alone: queued minus (delivered, failed, cancelled,
failed over) is what is still owed. `resume_state` does that arithmetic on journal records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gateways.channels.base import Notification

TERMINAL = (
    "notification.delivered",
    "notification.failed",
    "notification.cancelled",
    "notification.failover",
)
ACTOR = "Notifier"


@dataclass
class Pending:
    key: str
    channel: str
    recipient: str
    page_id: str
    alert_ids: list[str]
    severity: str
    title: str
    text: str
    markdown: str | None
    fields: dict[str, Any]
    created_ts: float  # earliest alert behind it entered the system
    step: int = 0
    mentions: list[str] = field(default_factory=list)
    contact: dict[str, str] | None = None  # who it is for (failover reaches them elsewhere)
    ack_url: str = ""
    # Runtime only, not journaled:
    attempts: int = 0
    not_before: float = 0.0
    resumed: bool = False
    uncertain: bool = False

    def note(self) -> Notification:
        return Notification(
            alert_id=self.page_id,
            idempotency_key=self.key,
            severity=self.severity,
            title=self.title,
            text=self.text,
            markdown=self.markdown,
            recipient=self.recipient,
            fields={k: v for k, v in self.fields.items() if isinstance(v, (int, float, str))},
            mentions=tuple(self.mentions),
            ack_url=self.ack_url,
        )

    def queued_record(self) -> dict[str, Any]:
        body = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("key", "channel", "attempts", "not_before", "resumed", "uncertain")
        }
        return {
            "kind": "notification.queued",
            "actor": ACTOR,
            "key": self.channel,
            "ref": self.key,
            **body,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Pending:
        names = set(cls.__dataclass_fields__) - {"key", "channel"}
        kwargs = {k: rec[k] for k in names if k in rec}
        return cls(key=rec["ref"], channel=rec["key"], **kwargs)


def outcome_record(kind: str, p: Pending, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "actor": ACTOR,
        "key": p.channel,
        "ref": p.key,
        "page_id": p.page_id,
        "alert_ids": p.alert_ids,
        **extra,
    }


@dataclass
class ResumeState:
    """What a restarted Notifier owes, rebuilt from the journal."""

    pending: list[Pending]
    pages: list[dict[str, Any]]  # escalation.opened records not acknowledged
    unreadable: list[dict[str, Any]]  # journal records this version cannot resume, with why
    acked: dict[str, dict[str, Any]]  # page id -> alert.acked record
    fired: dict[str, set[int]]  # page id -> step indices already fired
    unpaged: list[dict[str, Any]]  # accepted alert records no page covers yet
    delivered_keys: set[str]


def resume_state(by_kind: dict[str, list[dict[str, Any]]]) -> ResumeState:
    """Outbox arithmetic over journal records grouped by kind."""
    done = {r["ref"] for kind in TERMINAL for r in by_kind.get(kind, [])}
    delivered = {r["ref"] for r in by_kind.get("notification.delivered", [])}
    tried = {r.get("try") for r in by_kind.get("notification.attempt", [])}
    in_flight = {
        r["ref"] for r in by_kind.get("notification.sending", []) if r.get("try") not in tried
    }
    acked = {r["ref"]: r for r in by_kind.get("alert.acked", [])}
    pending, seen, unreadable = [], set(), []
    for rec in by_kind.get("notification.queued", []):
        key = rec["ref"]
        if key in done or key in seen:
            continue
        seen.add(key)
        try:
            p = Pending.from_record(rec)
        except (KeyError, TypeError, ValueError) as exc:  # e.g. written by an older version
            unreadable.append(
                {"seq": rec.get("seq"), "ref": key, "reason": f"{type(exc).__name__}: {exc}"}
            )
            continue
        p.resumed = True
        p.uncertain = key in in_flight
        pending.append(p)
    fired: dict[str, set[int]] = {}
    for rec in by_kind.get("escalation.step", []):
        fired.setdefault(rec["ref"], set()).add(int(rec["step"]))
    opened = [r for r in by_kind.get("escalation.opened", [])]
    paged = {a for r in opened for a in r.get("alert_ids", [])}
    unpaged, seen_alerts = [], set()
    for rec in by_kind.get("notification.accepted", []):
        alert = rec.get("alert", {})
        aid = alert.get("alert_id")
        if aid and aid not in paged and aid not in seen_alerts:
            seen_alerts.add(aid)
            unpaged.append(alert)
    return ResumeState(pending, opened, unreadable, acked, fired, unpaged, delivered)
