"""Journal records of the closed loop: proposals, decisions, plans, orders, reports, closing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rules.journal_records.base import JournalRecord, register
from rules.model import Direction, Offset, Order

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
    """One person's approval or rejection at one stage (complete: it decided the proposal).

    `auth` is the proof `audit verify` checks (issue 13 item 5): who signed (`signer`: person,
    console, demo, emergency), the signature, the console session's reference, and the signed
    request's own ids, group and ts, so the request digest can be recomputed."""

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
    auth: dict[str, Any] = field(default_factory=dict)


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
