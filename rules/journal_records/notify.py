"""The Notifier's journal records (notification.*, escalation.*), in the one registry.

Every writer builds a record here (`Delivered(...).to_record()`) and every reader turns a journal
dict back into the same type (`from_record`, or `parse`), so a field is named in one place. The
dicts are the ones the journal held before these types existed (the same keys), plus `v`, the
version; an older record (no `v`) reads as version 1. Their `ts` is left out when not given (the
journal stamps the append). A field the Notifier cannot do without is in `REQUIRED`: a record
without it fails to read with a TypeError naming it (a restart reports such a queued record as
`notification.unresumable` instead of sending an empty page). `alert.acked`, which the Notifier
writes and the KPI and replay read, is defined in `observed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rules.journal_records.base import JournalRecord, register
from rules.journal_records.observed import AlertAcked

ACTOR = "Notifier"


@dataclass(frozen=True, kw_only=True)
class NotifyRecord(JournalRecord):
    """Envelope: who wrote it, about what (key: rule, chain or channel), which object (ref)."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"ts"})
    actor: str = ACTOR
    ts: float | None = None  # the journal's stamp when read back


@register
@dataclass(frozen=True, kw_only=True)
class Accepted(NotifyRecord):
    """An alert the Notifier took on (key = rule id, ref = alert id), before it is paged."""

    KIND: ClassVar[str] = "notification.accepted"
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"alert"})
    alert: dict[str, Any] = field(default_factory=dict)


@register
@dataclass(frozen=True, kw_only=True)
class PageOpened(NotifyRecord):
    """A page (key = chain, ref = page id) with the plan it follows, so a restart keeps it."""

    KIND: ClassVar[str] = "escalation.opened"
    REQUIRED: ClassVar[frozenset[str]] = frozenset(
        {"alert_ids", "severity", "started", "created_ts", "title", "text", "markdown"}
    )
    alert_ids: list[str] = field(default_factory=list)
    severity: str = ""
    started: float = 0.0
    created_ts: float = 0.0
    title: str = ""
    text: str = ""
    markdown: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    dimension: str = "account"
    alert_key: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)


@register
@dataclass(frozen=True, kw_only=True)
class StepFired(NotifyRecord):
    """One escalation step fired (key = channel, ref = page id) and the notifications it queued."""

    KIND: ClassVar[str] = "escalation.step"
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"step"})
    step: int = 0
    level: int = 0
    roster: str = ""
    at_s: float = 0.0
    keys: list[str] = field(default_factory=list)


@register
@dataclass(frozen=True, kw_only=True)
class Queued(NotifyRecord):
    """The outbox entry (key = channel, ref = notification key): all it takes to send again."""

    KIND: ClassVar[str] = "notification.queued"
    REQUIRED: ClassVar[frozenset[str]] = frozenset(
        {
            "recipient",
            "page_id",
            "alert_ids",
            "severity",
            "title",
            "text",
            "markdown",
            "fields",
            "created_ts",
        }
    )
    recipient: str = ""
    page_id: str = ""
    alert_ids: list[str] = field(default_factory=list)
    severity: str = ""
    title: str = ""
    text: str = ""
    markdown: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    created_ts: float = 0.0
    step: int = 0
    mentions: list[str] = field(default_factory=list)
    contact: dict[str, str] | None = None
    ack_by: str = ""


@dataclass(frozen=True, kw_only=True)
class Outcome(NotifyRecord):
    """What every record about one notification carries (key = channel, ref = its key)."""

    page_id: str = ""
    alert_ids: list[str] = field(default_factory=list)


@register
@dataclass(frozen=True, kw_only=True)
class Sending(Outcome):
    """Held by the journal before a post to a provider without idempotency keys."""

    KIND: ClassVar[str] = "notification.sending"
    WIRE: ClassVar[dict[str, str]] = {"try_id": "try"}
    attempt: int = 0
    try_id: str = ""
    at: float | None = None  # when the post started (the machine's clock)


@register
@dataclass(frozen=True, kw_only=True)
class Attempt(Outcome):
    KIND: ClassVar[str] = "notification.attempt"
    WIRE: ClassVar[dict[str, str]] = {"try_id": "try"}
    attempt: int = 0
    ok: bool = False
    retry: bool = False
    try_id: str = ""
    status: int | None = None
    code: int | None = None
    error: str | None = None
    provider_id: str | None = None
    latency_ms: float = 0.0
    batch: str | None = None  # the coalesced post's key


@register
@dataclass(frozen=True, kw_only=True)
class Delivered(Outcome):
    KIND: ClassVar[str] = "notification.delivered"
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"attempts"})
    attempts: int = 0
    provider_id: str | None = None
    batch: str | None = None
    latency_ms: float = 0.0


@register
@dataclass(frozen=True, kw_only=True)
class Failed(Outcome):
    KIND: ClassVar[str] = "notification.failed"
    attempts: int = 0
    error: str = ""


@register
@dataclass(frozen=True, kw_only=True)
class Cancelled(Outcome):
    KIND: ClassVar[str] = "notification.cancelled"
    attempts: int = 0
    error: str = ""  # why: "acknowledged", "channel gone"


@register
@dataclass(frozen=True, kw_only=True)
class FailedOver(Outcome):
    KIND: ClassVar[str] = "notification.failover"
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"to"})
    # keys of the notifications that replace it on the failover channel
    to: list[str] = field(default_factory=list)
    error: str = ""
    attempts: int = 0


@register
@dataclass(frozen=True, kw_only=True)
class Resumed(Outcome):
    """A restart owes this one; `uncertain`: a post without provider dedup was in flight (its
    `notification.sending` committed, no answer booked: `try_id`, `sending_ts`). Sent again, it
    reaches the recipient twice only if the provider had accepted it within the residual window
    (its accept to our commit of the answer, docs/delivery.md)."""

    KIND: ClassVar[str] = "notification.resumed"
    uncertain: bool = False
    idempotent: bool = True
    try_id: str = ""
    sending_ts: float | None = None


@register
@dataclass(frozen=True, kw_only=True)
class Unresumable(NotifyRecord):
    """A queued record this version cannot read (ref = its key), with why."""

    KIND: ClassVar[str] = "notification.unresumable"
    record_seq: int | None = None
    reason: str = ""


@register
@dataclass(frozen=True, kw_only=True)
class Status(NotifyRecord):
    """A provider's status callback (key = channel, ref = notification key)."""

    KIND: ClassVar[str] = "notification.status"
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"status"})
    status: str = ""
    sid: str | None = None
    error_code: str | None = None


RECORDS: tuple[type[Any], ...] = (
    Accepted,
    PageOpened,
    StepFired,
    Queued,
    Sending,
    Attempt,
    Delivered,
    Failed,
    Cancelled,
    FailedOver,
    Resumed,
    Unresumable,
    Status,
    AlertAcked,
)
BY_KIND: dict[str, type[Any]] = {cls.KIND: cls for cls in RECORDS}
