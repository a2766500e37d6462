"""What goes into the notification machine and what comes out of it.

Inputs are facts (alerts arrived, a provider answered, someone acknowledged, time passed, the
journal holds these records); effects are what the shell must do about them, in order: write
the journal entries (each with its durability), then perform the sends and loads. The machine
never waits, reads a clock or touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules.model import Alert
from rules.notify.model import Message

# Durability of a journal entry, weakest first:
APPEND = "append"  # buffered (attempts, outcomes, callbacks): a crash costs at most a resend
RECEIVED = "received"  # held in the journal actor's memory: lost with it; no post relies on it
DURABLE = "durable"  # committed before anything acts on it (accepted, pages, queued, acks)

# Outcomes of one delivery attempt:
ACCEPTED = "accepted"  # the provider took it (the sink/provider stored it before answering)
RETRYABLE = "failed-retryable"  # 5xx, timeout, refused, rate limited
FINAL = "failed-final"  # 4xx, bad credentials, unknown number or robot key
UNCERTAIN = "uncertain"  # the channel itself broke: the post may or may not have gone out


@dataclass(frozen=True)
class AlertsIn:
    """Alerts from the Correlator (already grouped there) or the Executor."""

    alerts: tuple[Alert, ...]


@dataclass(frozen=True)
class Result:
    """A provider's answer to the send `try_id`."""

    try_id: str
    outcome: str  # ACCEPTED, RETRYABLE, FINAL or UNCERTAIN
    status: int | None = None
    code: int | None = None
    error: str | None = None
    provider_id: str | None = None
    latency_ms: float = 0.0


@dataclass(frozen=True)
class Ack:
    alert_id: str  # a page id or any of its alerts' ids
    by: str
    via: str


@dataclass(frozen=True)
class ProviderStatus:
    """A provider's status callback (Twilio MessageStatus / CallStatus) for notification `key`."""

    key: str
    params: dict[str, str]


@dataclass(frozen=True)
class Tick:
    """Time passed: fire due steps, release retries, pump the lanes."""


@dataclass(frozen=True)
class Journaled:
    """The shell wrote the durable entry `token`: what it queued may now be sent."""

    token: int


@dataclass(frozen=True)
class Loaded:
    """Spilled notifications read back from the journal: their latest queued record, or None
    when the journal has none."""

    channel: str
    records: tuple[tuple[str, dict[str, Any] | None], ...]  # (key, record)


@dataclass(frozen=True)
class Replay:
    """A restart: the journal's records of the resume window, grouped by kind."""

    by_kind: dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Send:
    try_id: str
    channel: str
    message: Message


@dataclass
class Effects:
    journal: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    # Set when a DURABLE entry queued notifications: apply Journaled(token) once it is written.
    token: int | None = None
    sends: list[Send] = field(default_factory=list)
    loads: list[tuple[str, list[str]]] = field(default_factory=list)  # (channel, keys)
    metrics: list[tuple[str, float, dict[str, str]]] = field(default_factory=list)
    wake: float | None = None  # the timer: when the next Tick is worth applying
    reply: Any = None

    def write(self, durability: str, records: list[dict[str, Any]]) -> None:
        if records:
            if self.journal and self.journal[-1][0] == durability:
                self.journal[-1][1].extend(records)
            else:
                self.journal.append((durability, list(records)))

    def metric(self, name: str, value: float, **tags: str) -> None:
        self.metrics.append((name, value, tags))

    def empty(self) -> bool:
        return not (self.journal or self.sends or self.loads or self.token is not None)
