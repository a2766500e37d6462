"""The Notifier's journal records, typed: one definition per kind (fields and version).

Every writer builds a record here (`Delivered(...).to_record()`) and every reader turns a journal
dict back into the same type (`from_record`), so a field is named in one place. The dicts are the
ones the journal held before these types existed (the same keys), plus `v`, the version; an older
record (no `v`) reads as version 1. `alert.acked`, which the Notifier writes and the KPI and
replay read, has its one definition in `rules.journal_records` (`observed`). The other kinds are
the Notifier's own and are not in that registry yet: their envelope has no `ts` (the journal
stamps it) and their fields have no defaults, so they do not fit `JournalRecord` as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from rules.journal_records.observed import AlertAcked

ACTOR = "Notifier"
R = TypeVar("R", bound="NotifyRecord")


@dataclass(frozen=True, kw_only=True)
class NotifyRecord:
    """Envelope: who wrote it, about what (key: rule, chain or channel), which object (ref)."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    WIRE: ClassVar[dict[str, str]] = {}  # field -> journal key where they differ ("try")

    actor: str = ACTOR
    key: str = ""
    ref: str = ""

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def version(self) -> int:
        return self.VERSION

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.KIND}
        for f in fields(self):
            out[self.WIRE.get(f.name, f.name)] = getattr(self, f.name)
        out["v"] = self.VERSION
        return out

    @classmethod
    def from_record(cls: type[R], rec: dict[str, Any]) -> R:
        """Known keys only (the journal's seq, a newer writer's fields are ignored); a missing
        required field raises TypeError naming it."""
        wire = {cls.WIRE.get(f.name, f.name): f.name for f in fields(cls)}
        return cls(**{name: rec[k] for k, name in wire.items() if k in rec})


@dataclass(frozen=True, kw_only=True)
class Accepted(NotifyRecord):
    """An alert the Notifier took on (key = rule id, ref = alert id), before it is paged."""

    KIND: ClassVar[str] = "notification.accepted"
    alert: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class PageOpened(NotifyRecord):
    """A page (key = chain, ref = page id) with the plan it follows, so a restart keeps it."""

    KIND: ClassVar[str] = "escalation.opened"
    alert_ids: list[str]
    severity: str
    started: float
    created_ts: float
    title: str
    text: str
    markdown: str
    fields: dict[str, Any] = field(default_factory=dict)
    dimension: str = "account"
    alert_key: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class StepFired(NotifyRecord):
    """One escalation step fired (key = channel, ref = page id) and the notifications it queued."""

    KIND: ClassVar[str] = "escalation.step"
    step: int
    level: int = 0
    roster: str = ""
    at_s: float = 0.0
    keys: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Queued(NotifyRecord):
    """The outbox entry (key = channel, ref = notification key): all it takes to send again."""

    KIND: ClassVar[str] = "notification.queued"
    recipient: str
    page_id: str
    alert_ids: list[str]
    severity: str
    title: str
    text: str
    markdown: str | None
    fields: dict[str, Any]
    created_ts: float
    step: int = 0
    mentions: list[str] = field(default_factory=list)
    contact: dict[str, str] | None = None
    ack_by: str = ""


@dataclass(frozen=True, kw_only=True)
class Outcome(NotifyRecord):
    """What every record about one notification carries (key = channel, ref = its key)."""

    page_id: str = ""
    alert_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Sending(Outcome):
    """Held by the journal before a post to a provider without idempotency keys."""

    KIND: ClassVar[str] = "notification.sending"
    WIRE: ClassVar[dict[str, str]] = {"try_id": "try"}
    attempt: int = 0
    try_id: str = ""
    at: float | None = None  # when the post started (the machine's clock)


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


@dataclass(frozen=True, kw_only=True)
class Delivered(Outcome):
    KIND: ClassVar[str] = "notification.delivered"
    attempts: int
    provider_id: str | None = None
    batch: str | None = None
    latency_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Failed(Outcome):
    KIND: ClassVar[str] = "notification.failed"
    attempts: int = 0
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class Cancelled(Outcome):
    KIND: ClassVar[str] = "notification.cancelled"
    attempts: int = 0
    error: str = ""  # why: "acknowledged", "channel gone"


@dataclass(frozen=True, kw_only=True)
class FailedOver(Outcome):
    KIND: ClassVar[str] = "notification.failover"
    to: list[str]  # keys of the notifications that replace it on the failover channel
    error: str = ""
    attempts: int = 0


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


@dataclass(frozen=True, kw_only=True)
class Unresumable(NotifyRecord):
    """A queued record this version cannot read (ref = its key), with why."""

    KIND: ClassVar[str] = "notification.unresumable"
    record_seq: int | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class Status(NotifyRecord):
    """A provider's status callback (key = channel, ref = notification key)."""

    KIND: ClassVar[str] = "notification.status"
    status: str
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
