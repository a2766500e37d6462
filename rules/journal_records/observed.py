"""Journal records other actors write and the readers read: trades, alerts, risk events, acks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rules.journal_records.base import JournalRecord, register
from rules.model import Direction, Fill, Offset

# ---- what other actors write and the readers read ---------------------------------------------


@register
@dataclass(frozen=True, kw_only=True)
class Trade(JournalRecord):
    """A fill as the account shard applied it (ref = order_ref)."""

    KIND: ClassVar[str] = "trade"
    type: str = "trade"
    account_id: str = ""
    instrument: str = ""
    direction: str = "long"
    offset: str = "open"
    volume: float = 0.0
    price: float = 0.0
    commission: float = 0.0
    trade_id: str = ""
    order_ref: str = ""

    def to_fill(self) -> Fill:
        return Fill(
            self.order_ref, self.account_id, self.instrument, Direction(self.direction),
            Offset(self.offset), float(self.volume), float(self.price), self.ts, self.trade_id,
        )  # fmt: skip


@register
@dataclass(frozen=True, kw_only=True)
class AlertRecord(JournalRecord):
    """An alert the correlator raised (ref = alert id, key = account or contract)."""

    KIND: ClassVar[str] = "alert"
    alert_id: str = ""
    rule_id: str = ""
    severity: str = ""
    title: str = ""
    value: float = 0.0
    threshold: float = 0.0
    created_ts: float = 0.0
    ingress_ts: float = 0.0
    dimension: str = "account"
    attributes: dict[str, Any] = field(default_factory=dict)


@register
@dataclass(frozen=True, kw_only=True)
class RiskEventRecord(JournalRecord):
    """What a rule saw (ref = rule id)."""

    KIND: ClassVar[str] = "risk_event"
    risk_event_kind: str = ""  # the event's own kind (e.g. account.risk_degree), renamed
    rule_id: str = ""
    severity: str = ""
    value: float = 0.0
    threshold: float = 0.0
    ingress_ts: float = 0.0
    episode: int = 0
    dimension: str = "account"
    attributes: dict[str, Any] = field(default_factory=dict)


@register
@dataclass(frozen=True, kw_only=True)
class AlertAcked(JournalRecord):
    """Someone acknowledged one or more alerts."""

    KIND: ClassVar[str] = "alert.acked"
    alert_ids: list[str] = field(default_factory=list)
    by: str = ""
    via: str = ""
    after_s: float = 0.0
