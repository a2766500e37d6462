"""The nouns of notification: settings, a lane's spec, a page, one pending notification, and the
message a channel is asked to send.

Pure records. A `Pending` is one notification for one recipient on one channel; its
`notification.queued` record carries everything needed to send it again, so a restarted Notifier
rebuilds what it owes from the journal alone. A `Page` is the unit that escalates and is
acknowledged: one alert, or a digest of one Correlator group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rules.escalation import Step
from rules.journal_records import notify as rec_

ACTOR = "Notifier"
# Providers whose API cannot recognise a resent request as the same one (no idempotency key):
# the machine records "sending" before each post so a restart knows which sends are uncertain.
# Twilio too (docs/delivery.md): its Messages and Calls create take no idempotency key (Twilio's
# own library, built from its API description, has one only on other resources), and the
# `I-Twilio-Idempotency-Token` header is documented on the webhooks Twilio sends, not on ours.
NON_IDEMPOTENT = frozenset({"wecom", "email", "twilio_sms", "twilio_voice"})
DEFAULT_RATE = {"wecom": (20, 60.0)}  # the WeCom robot's documented limit per key


@dataclass(frozen=True)
class Settings:
    """What the machine needs of the notifier's configuration (validated at the edge)."""

    max_attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    jitter: float = 0.2
    breaker_failures: int = 5
    breaker_cooldown_s: float = 10.0
    queue_limit: int = 10_000  # per lane; beyond it notifications wait in the journal only
    coalesce_max: int = 40
    group_over: int = 5  # a Correlator group larger than this becomes one digest page
    seed: int = 0  # of the retry jitter
    session: str = ""  # names this run's send attempts apart from a previous process's
    console_url: str = ""  # links in pages point at it ([console] public_url / url())


@dataclass(frozen=True)
class LaneSpec:
    """One channel as the machine sees it (the channel object itself stays in the shell)."""

    name: str
    kind: str
    recipients: tuple[str, ...] = ("",)
    failover: tuple[str, ...] = ()
    rate: tuple[int, float] | None = None  # (posts, window seconds)
    max_in_flight: int = 8
    linger_s: float = 0.5
    markdown: bool = False

    @property
    def idempotent(self) -> bool:
        return self.kind not in NON_IDEMPOTENT


@dataclass(frozen=True)
class Message:
    """What one post says; the shell turns it into the channel's Notification (and signs the
    reply link for `ack_by`, since the signing key is not the machine's business)."""

    alert_id: str
    idempotency_key: str
    severity: str
    title: str
    text: str
    markdown: str | None = None
    recipient: str = ""
    fields: dict[str, str | float] = field(default_factory=dict)
    mentions: tuple[str, ...] = ()
    member_keys: tuple[str, ...] = ()
    ack_by: str = ""  # "" for a coalesced message: no one link acknowledges a batch


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
    ack_by: str = ""
    # Runtime only, not journaled:
    attempts: int = 0
    not_before: float = 0.0
    resumed: bool = False
    uncertain: bool = False

    def message(self, form: str = "") -> Message:
        """The post; `form` names the channel's own text among the figures (rules.notify.render:
        "sms" for one SMS segment, "voice" for speakable Chinese), the page's text otherwise."""
        text = self.fields.get(form) if form else None
        return Message(
            alert_id=self.page_id,
            idempotency_key=self.key,
            severity=self.severity,
            title=self.title,
            text=text if isinstance(text, str) and text else self.text,
            markdown=self.markdown,
            recipient=self.recipient,
            fields={k: v for k, v in self.fields.items() if isinstance(v, (int, float, str))},
            mentions=tuple(self.mentions),
            ack_by=self.ack_by,
        )

    def queued_record(self) -> dict[str, Any]:
        """The outbox entry (`records.Queued`)."""
        return rec_.Queued(
            key=self.channel,
            ref=self.key,
            recipient=self.recipient,
            page_id=self.page_id,
            alert_ids=self.alert_ids,
            severity=self.severity,
            title=self.title,
            text=self.text,
            markdown=self.markdown,
            fields=self.fields,
            created_ts=self.created_ts,
            step=self.step,
            mentions=self.mentions,
            contact=self.contact,
            ack_by=self.ack_by,
        ).to_record()

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Pending:
        """From a queued record; TypeError names a field an old record lacks."""
        q = rec_.Queued.from_record(rec)
        return cls(
            q.ref,
            q.key,
            q.recipient,
            q.page_id,
            list(q.alert_ids),
            q.severity,
            q.title,
            q.text,
            q.markdown,
            dict(q.fields),
            q.created_ts,
            q.step,
            list(q.mentions),
            q.contact,
            q.ack_by,
        )


def about(cls: type[rec_.Outcome], p: Pending, **extra: Any) -> dict[str, Any]:
    """A record about one notification (delivered, failed, attempt…) as a journal dict."""
    return cls(
        key=p.channel, ref=p.key, page_id=p.page_id, alert_ids=p.alert_ids, **extra
    ).to_record()


@dataclass
class Page:
    page_id: str
    alert_ids: list[str]
    severity: str
    chain: str
    steps: tuple[Step, ...]
    started: float
    created_ts: float
    title: str
    text: str
    markdown: str
    fields: dict[str, Any]
    dimension: str = "account"
    key: str = ""
    fired: set[int] = field(default_factory=set)
    acked: dict[str, Any] | None = None
    first_delivery_ts: float | None = None
    delivered: int = 0

    def opened_record(self) -> dict[str, Any]:
        return rec_.PageOpened(
            key=self.chain,
            ref=self.page_id,
            alert_ids=self.alert_ids,
            severity=self.severity,
            started=self.started,
            created_ts=self.created_ts,
            title=self.title,
            text=self.text,
            markdown=self.markdown,
            fields=self.fields,
            dimension=self.dimension,
            alert_key=self.key,
            steps=[asdict(s) for s in self.steps],
        ).to_record()

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Page:
        r = rec_.PageOpened.from_record(rec)
        return cls(
            page_id=r.ref,
            alert_ids=list(r.alert_ids),
            severity=r.severity,
            chain=r.key,
            steps=tuple(Step(**s) for s in r.steps),
            started=float(r.started),
            created_ts=float(r.created_ts),
            title=r.title,
            text=r.text,
            markdown=r.markdown,
            fields=dict(r.fields or {}),
            dimension=r.dimension,
            key=r.alert_key,
        )

    def summary(self) -> dict[str, Any]:
        """What GET /alerts shows of a page."""
        acked = self.acked or {}
        return {
            "page_id": self.page_id,
            "alert_ids": self.alert_ids,
            "severity": self.severity,
            "title": self.title,
            "chain": self.chain,
            "started": self.started,
            "steps_fired": sorted(self.fired),
            "steps_total": len(self.steps),
            "delivered": self.delivered,
            "state": "acked" if self.acked else "open",
            "acked_by": acked.get("by"),
            "acked_via": acked.get("via"),
            "acked_ts": acked.get("ts"),
        }
