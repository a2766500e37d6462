"""Typed journal records: one definition per record kind (its fields and version), one registry.

The journal stores plain dicts (`infra.audit`: kind, actor, key, ref, ts and a JSON payload). Every
writer builds them here (`SomeRecord(...).to_record()`) and every reader turns them back into the
same type (`parse(rec)` or `SomeRecord.from_record(rec)`), so a field is named in one place and
a rename cannot leave a reader behind. A record carries its schema version in the payload as
`v`; `from_record` reads older versions (missing fields take their defaults) and ignores keys it
does not know (the journal's own `seq`, fields a newer writer added).

Kinds of other actors (alerts, risk events, notification.*) register here too: `register` is a
class decorator; `KINDS` lists every registered kind; `parse` raises `UnknownRecordKind` for a
kind nobody registered, so a typo in a reader is an error, not an empty answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from rules.model import Direction, Fill, Offset, Order

__all__ = [
    "KINDS",
    "REGISTRY",
    "AccountMark",
    "AlertAcked",
    "AlertRecord",
    "ApprovalEscalated",
    "DecisionRecord",
    "JournalRecord",
    "MarginCallRecord",
    "OrderCancel",
    "OrderReport",
    "OrderSent",
    "PlanRecord",
    "ProposalClosed",
    "ProposalRecord",
    "Refusal",
    "RiskEventRecord",
    "Trade",
    "TradingState",
    "UnknownRecordKind",
    "kind_of",
    "kinds",
    "parse",
    "register",
]

ENVELOPE = ("kind", "actor", "key", "ref", "ts", "seq", "v")
REGISTRY: dict[str, type[JournalRecord]] = {}
R = TypeVar("R", bound="JournalRecord")


class UnknownRecordKind(KeyError):
    """A record whose kind no module registered."""


def register(cls: type[R]) -> type[R]:
    """Class decorator: the one definition of `cls.KIND` (a second one is a programming error)."""
    if cls.KIND in REGISTRY and REGISTRY[cls.KIND] is not cls:
        raise ValueError(f"journal record kind {cls.KIND!r} registered twice")
    REGISTRY[cls.KIND] = cls
    cls._FIELDS = tuple(f.name for f in fields(cls))
    return cls


def kind_of(cls: type[JournalRecord]) -> str:
    return cls.KIND


def parse(rec: dict[str, Any]) -> JournalRecord:
    """The typed record of a journal dict (by its `kind`)."""
    cls = REGISTRY.get(str(rec.get("kind", "")))
    if cls is None:
        raise UnknownRecordKind(f"journal record kind {rec.get('kind')!r} is not registered")
    return cls.from_record(rec)


@dataclass(frozen=True, kw_only=True)
class JournalRecord:
    """The envelope every record shares: who wrote it (actor), about what (key: account, group
    or contract), which object (ref: proposal id, order ref, alert id), when (ts)."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()  # omitted from the dict when None
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    actor: str = ""
    key: str = ""
    ref: str = ""
    ts: float = 0.0
    seq: int | None = None  # the journal's sequence number, when read back

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self._FIELDS:
            value = getattr(self, name)
            if name == "seq" or (value is None and name in self.OPTIONAL):
                continue
            out[name] = value
        out["kind"] = self.KIND
        out["v"] = self.VERSION
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The record's fields in their defined order (the envelope first)."""
        return cls._FIELDS

    @classmethod
    def from_record(cls: type[R], rec: dict[str, Any]) -> R:
        return cls(**{k: rec[k] for k in cls._FIELDS if k in rec})


# ---- the closed loop: proposals, decisions, plans, orders, reports, closing ---------------------


@register
@dataclass(frozen=True, kw_only=True)
class ProposalRecord(JournalRecord):
    """A proposal as journaled before anything acts on it (ref = proposal id, key = account)."""

    KIND: ClassVar[str] = "proposal"
    proposal_id: str = ""
    alert_id: str = ""
    account_id: str = ""
    proposal_kind: str = ""
    target_risk_degree: float = 0.0
    created_ts: float = 0.0
    state: str = "pending"
    reason: str = ""
    decided_by: str = ""
    decided_ts: float = 0.0
    proposed_by: str = "system"
    group_id: str = ""
    size: float = 0.0
    stages: list[dict[str, Any]] = field(default_factory=list)
    policy: str = "open"
    preview: dict[str, Any] = field(default_factory=dict)


@register
@dataclass(frozen=True, kw_only=True)
class Refusal(JournalRecord):
    """A request or a proposal refused, with its upper-case reason code (rules.approval)."""

    KIND: ClassVar[str] = "refusal"
    user: str = ""
    via: str = ""
    request_id: str = ""
    decision: str = ""
    code: str = ""
    reason: str = ""


@register
@dataclass(frozen=True, kw_only=True)
class DecisionRecord(JournalRecord):
    """One person's approval or rejection at one stage (complete: it decided the proposal)."""

    KIND: ClassVar[str] = "decision"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"group_id"})
    user: str = ""
    via: str = ""
    request_id: str = ""
    decision: str = ""
    reason: str = ""
    signed: bool = False
    stage_index: int = 0
    stage_name: str = ""
    stage_after: int = 0
    status_after: str = ""
    complete: bool = False
    group_id: str | None = None


@register
@dataclass(frozen=True, kw_only=True)
class ApprovalEscalated(JournalRecord):
    """A stage past its time limit, paged once per (group, stage) (ref = group id)."""

    KIND: ClassVar[str] = "approval_escalated"
    proposal_ids: list[str] = field(default_factory=list)
    stage_index: int = 0
    stage_name: str = ""
    roles: list[str] = field(default_factory=list)
    waited_s: float = 0.0


@register
@dataclass(frozen=True, kw_only=True)
class PlanRecord(JournalRecord):
    """The plan an approved proposal became, on fresh figures (rules.actions.Plan)."""

    KIND: ClassVar[str] = "plan"
    plan_kind: str = ""
    account_id: str = ""
    target_risk_degree: float = 0.0
    legs: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    margin_call: float = 0.0
    projected_risk_degree: float = 0.0
    explanation: str = ""
    notional: float = 0.0
    deadline_s: float = 0.0
    trading_state: str = ""


@register
@dataclass(frozen=True, kw_only=True)
class OrderSent(JournalRecord):
    """An order, journaled before it is sent (ref = order_ref = stable_id(proposal, leg, attempt)).
    The wire carries only the CTP fields (`to_order`); the journal keeps leg, attempt, reason."""

    KIND: ClassVar[str] = "order"
    order_ref: str = ""
    proposal_id: str = ""
    account_id: str = ""
    instrument: str = ""
    direction: str = "short"
    offset: str = "close"
    volume: float = 0.0
    limit_price: float = 0.0
    created_ts: float = 0.0
    leg: int = 0
    attempt: int = 0
    reason: str = ""

    def to_order(self) -> Order:
        return Order(
            self.order_ref, self.proposal_id, self.account_id, self.instrument,
            Direction(self.direction), Offset(self.offset), self.volume, self.limit_price,
            self.created_ts,
        )  # fmt: skip


@register
@dataclass(frozen=True, kw_only=True)
class OrderCancel(JournalRecord):
    """A cancel asked of the gateway: REPRICE (a replacement follows) or GIVE_UP."""

    KIND: ClassVar[str] = "order_cancel"
    reason: str = ""


@register
@dataclass(frozen=True, kw_only=True)
class OrderReport(JournalRecord):
    """A gateway report that changed an order (or said duplicate / unknown / rejected)."""

    KIND: ClassVar[str] = "order_report"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"query", "state"})
    order_ref: str = ""
    proposal_id: str = ""
    account_id: str = ""
    instrument: str = ""
    status: str = ""
    filled: float = 0.0
    remaining: float = 0.0
    price: float = 0.0
    reason: str = ""
    report_ts: float = 0.0  # the gateway's clock; `ts` is the executor's
    query: bool | None = None
    state: str | None = None


@register
@dataclass(frozen=True, kw_only=True)
class MarginCallRecord(JournalRecord):
    """追加保证金: the amount the client must deposit and by when."""

    KIND: ClassVar[str] = "margin_call"
    amount: float = 0.0
    deadline_ts: float = 0.0


@register
@dataclass(frozen=True, kw_only=True)
class TradingState(JournalRecord):
    """A freeze: REDUCING asked of the gateway; acked once the gateway confirmed it."""

    KIND: ClassVar[str] = "trading_state"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"acked"})
    state: str = ""
    acked: bool | None = None


@register
@dataclass(frozen=True, kw_only=True)
class ProposalClosed(JournalRecord):
    """How a proposal ended (done, failed with reasons, rejected, expired) and the figures after."""

    KIND: ClassVar[str] = "proposal_closed"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset(
        {"risk_degree_after", "equity_after", "margin_after", "available_after",
         "prices_after", "positions_after"}
    )  # fmt: skip
    state: str = ""
    reason: str = ""
    proposal_kind: str = ""
    alert_id: str = ""
    filled: float = 0.0
    orders: int = 0
    decided_by: str = ""
    proposal_to_fill_ms: float | None = None
    decision_to_fill_ms: float | None = None
    risk_degree_after: float | None = None
    equity_after: float | None = None
    margin_after: float | None = None
    available_after: float | None = None
    prices_after: dict[str, float] | None = None
    positions_after: list[dict[str, Any]] | None = None


@register
@dataclass(frozen=True, kw_only=True)
class AccountMark(JournalRecord):
    """An account's figures for the record (what the replay report charts)."""

    KIND: ClassVar[str] = "account_mark"
    phase: str = ""
    risk_degree: float = 0.0
    equity: float = 0.0
    margin: float = 0.0
    available: float | None = None
    prices: dict[str, float] = field(default_factory=dict)
    volumes: dict[str, float] = field(default_factory=dict)


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


def kinds() -> tuple[str, ...]:
    """Every registered kind (other modules may register more after this one loads)."""
    return tuple(REGISTRY)


KINDS: tuple[str, ...] = kinds()  # the kinds defined in this module
