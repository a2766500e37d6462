"""The outbox: each notification is a journal record before it is a request to a provider.

A `notification.queued` record carries everything needed to send a notification again (text,
recipient, page), so a restarted Notifier rebuilds the outbox from the journal alone: queued minus
(delivered, failed, cancelled, failed over) is what is still owed. Of that, what has a
`notification.sending` with no answer after it was in flight at the crash (`stuck`): the only
ones a provider without idempotency may already hold. `resume_state` does that
arithmetic on journal records; the machine's `Replay` input applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rules.journal_records import notify as rec_
from rules.notify.model import Pending

TERMINAL = (
    "notification.delivered",
    "notification.failed",
    "notification.cancelled",
    "notification.failover",
)
# Kinds a restart reads back (the resume window of the journal).
RESUME_KINDS = (
    "notification.accepted",
    "escalation.opened",
    "escalation.step",
    "alert.acked",
    "notification.queued",
    "notification.sending",
    "notification.attempt",
    "notification.delivered",
    "notification.failed",
    "notification.cancelled",
    "notification.failover",
)


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
    stuck: dict[str, dict[str, Any]]  # key -> its `notification.sending` left without an answer


def resume_state(by_kind: dict[str, list[dict[str, Any]]]) -> ResumeState:
    """Outbox arithmetic over journal records grouped by kind."""
    done = {r["ref"] for kind in TERMINAL for r in by_kind.get(kind, [])}
    delivered = {r["ref"] for r in by_kind.get("notification.delivered", [])}
    tried = {rec_.Attempt.from_record(r).try_id for r in by_kind.get("notification.attempt", [])}
    stuck = {
        r["ref"]: r for r in by_kind.get("notification.sending", [])
        if rec_.Sending.from_record(r).try_id not in tried
    }  # fmt: skip
    in_flight = set(stuck)
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
    for step in map(rec_.StepFired.from_record, by_kind.get("escalation.step", [])):
        fired.setdefault(step.ref, set()).add(int(step.step))
    opened = [r for r in by_kind.get("escalation.opened", [])]
    paged = {a for r in opened for a in r.get("alert_ids", [])}
    unpaged, seen_alerts = [], set()
    for accepted in map(rec_.Accepted.from_record, by_kind.get("notification.accepted", [])):
        alert = accepted.alert
        aid = alert.get("alert_id")
        if aid and aid not in paged and aid not in seen_alerts:
            seen_alerts.add(aid)
            unpaged.append(alert)
    return ResumeState(pending, opened, unreadable, acked, fired, unpaged, delivered, stuck)
