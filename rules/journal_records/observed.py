"""Journal records other actors write and the readers read: trades, alerts, risk events, acks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rules.journal_records.base import JournalRecord, R, register
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
    # v2: what an adaptive rule judged the key against (rules.engine.evidence: score,
    # baseline, threshold, text); None for fixed rules and for v1 records without it.
    evidence: dict[str, Any] | None = None

    VERSION: ClassVar[int] = 2
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"evidence"})

    @classmethod
    def from_record(cls: type[R], rec: dict[str, Any]) -> R:
        return _with_evidence(cls, rec)


def _with_evidence(cls: type[R], rec: dict[str, Any]) -> R:
    """v1 records (and writers that kept it in the attributes) carry the evidence, if any,
    as `attributes["evidence"]`: read it from there."""
    body = {k: rec[k] for k in cls.field_names() if k in rec}
    if body.get("evidence") is None:
        attrs = rec.get("attributes")
        found = attrs.get("evidence") if isinstance(attrs, dict) else None
        body["evidence"] = dict(found) if isinstance(found, dict) else None
    return cls(**body)


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
    evidence: dict[str, Any] | None = None  # v2, as AlertRecord.evidence

    VERSION: ClassVar[int] = 2
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"evidence"})

    @classmethod
    def from_record(cls: type[R], rec: dict[str, Any]) -> R:
        return _with_evidence(cls, rec)


@register
@dataclass(frozen=True, kw_only=True)
class AlertAcked(JournalRecord):
    """Someone acknowledged one or more alerts."""

    KIND: ClassVar[str] = "alert.acked"
    alert_ids: list[str] = field(default_factory=list)
    by: str = ""
    via: str = ""
    after_s: float = 0.0


@register
@dataclass(frozen=True, kw_only=True)
class AdaptiveState(JournalRecord):
    """The learned baselines of an actor's adaptive rules (key = actor, ref = rule-set
    version), journaled on a cadence so a restarted actor starts from them: per rule id its
    fingerprint and its state keyed by account id (a shard: rules.engine.evaluator) or by
    instrument (a feed: rules.engine.kinds.market_set)."""

    KIND: ClassVar[str] = "adaptive.state"
    account_rules: dict[str, Any] = field(default_factory=dict)
    transfer_rules: dict[str, Any] = field(default_factory=dict)
    market_rules: dict[str, Any] = field(default_factory=dict)  # a feed's, by instrument
