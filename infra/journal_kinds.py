"""Which journal records must be on disk before their sender goes on (issue 13, item 2).

DURABLE kinds are state something else rebuilds from after a crash (an outbox: a Correlator's
groups, the Executor's proposals and orders, the Notifier's pages and sends, silences, rule
sets): the AuditLog commits a batch that holds one before the call returns, so an AuditLog
killed afterwards cannot lose it. QUEUED kinds are observations, re-derivable or superseded by
the next one (risk events, marks, snapshots, delivery status): they ride the writer's batch
(`batch_ms`) and are fire-and-forget by declaration. A kind not listed is QUEUED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DURABLE, QUEUED = "durable", "queued"

KIND_DURABILITY: dict[str, str] = {
    # the Correlator: alerts and the batches handed to the Notifier (rules.engine.resume)
    "alert": DURABLE, "alert.grouped": DURABLE, "silence.added": DURABLE,
    "silence.expired": DURABLE, "ruleset.applied": DURABLE,
    # the Executor: the approval state machine and its orders
    "proposal": DURABLE, "decision": DURABLE, "refusal": DURABLE, "plan": DURABLE,
    "order": DURABLE, "order_cancel": DURABLE, "proposal_closed": DURABLE,
    "trading_state": DURABLE, "approval_escalated": DURABLE, "margin_call": DURABLE,
    # the Notifier: what it took on and what it sent
    "notification.accepted": DURABLE, "escalation.opened": DURABLE, "escalation.step": DURABLE,
    "notification.queued": DURABLE, "notification.sending": DURABLE,
    "notification.delivered": DURABLE, "notification.failed": DURABLE,
    "notification.cancelled": DURABLE, "alert.acked": DURABLE,
    # the journal's own: a record set aside, with the reason
    "quarantine": DURABLE,
    # observations: the next one supersedes, or the source replays them
    "risk_event": QUEUED, "account_mark": QUEUED, "operating_snapshot": QUEUED,
    "order_report": QUEUED, "trade": QUEUED, "notification.attempt": QUEUED,
    "notification.status": QUEUED, "notification.failover": QUEUED,
    "notification.resumed": QUEUED, "notification.unresumable": QUEUED,
    # a reply link's token digest: held by the AuditLog (`received`) before the post goes out
    "notification.link": QUEUED,
}  # fmt: skip


def durability(kind: str) -> str:
    return KIND_DURABILITY.get(kind, QUEUED)


def needs_commit(records: Iterable[Mapping[str, Any] | tuple]) -> bool:
    """Whether a batch holds a record of a DURABLE kind (a record, or one its sender encoded:
    infra.audit_encode.preencode, kind second)."""
    for r in records:
        if type(r) is tuple:
            kind = r[1] if len(r) > 1 else None
        elif isinstance(r, Mapping):
            kind = r.get("kind")
        else:
            continue
        if KIND_DURABILITY.get(str(kind)) == DURABLE:
            return True
    return False
