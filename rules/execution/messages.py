"""What goes into the execution state machine and what comes out of it.

Inputs are the messages the Executor receives (proposals, decisions, gateway reports, the clock,
the journal on a restart), each carrying the account figures the actor fetched for it — the
machine never asks anyone for anything. Effects are what the actor must do, in order: journal
(durable ones before anything after them acts: the outbox), send to the order gateway, ask the
notifier, fetch figures and come back with `PlanApproved`, observe metrics, answer the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.model import ActionProposal, Alert

AccountViews = Mapping[
    str, dict[str, Any]
]  # account id -> its shard's view (risk degree, positions)


@dataclass(frozen=True)
class ExecutionSettings:
    """The machine's timing and limits ([orders] and [approval] of the config)."""

    reprice_after_s: float = 5.0
    max_reprices: int = 3
    verify_timeout_s: float = 10.0
    query_after_s: float = 2.0
    mark_interval_s: float = 5.0
    margin_call_deadline_s: float = 3600.0
    resume_window_s: float = 3 * 86_400.0
    tick_s: float = 0.1
    group_gap_s: float = 30.0
    # a target counts as met within this band of risk degree (0.0005 = 0.05 percentage points),
    # so 70.01% against a 70% target is met; prices move in ticks and the figures in floats
    target_tolerance: float = 0.0005


# ---- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposalsSubmitted:
    """Proposals from the correlator (or the emergency policy), with their accounts' views."""

    proposals: tuple[ActionProposal, ...]
    proposer: str
    views: AccountViews = field(default_factory=dict)


@dataclass(frozen=True)
class ManualProposal:
    """A person proposes an action by hand (four-eyes: someone else must approve it)."""

    account_id: str
    kind: str
    user: str
    target: float = 0.8
    reason: str = ""
    views: AccountViews = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """An approve / reject request: ids or a batch group, signed by a person (`secret` is theirs,
    looked up by the actor; never journaled) or by the console for one of its sessions
    (`session`: the session's reference; `console_key` looked up by the actor)."""

    action: str
    user: str
    ids: tuple[str, ...] = ()
    group: str = ""
    reason: str = ""
    ts: float = 0.0
    request_id: str = ""
    signature: str = ""
    via: str = "ray"
    secret: str | None = None
    session: str = ""
    console_key: str | None = None

    @classmethod
    def from_request(
        cls, request: Mapping[str, Any], secret: str | None, console_key: str | None = None
    ) -> Decision:
        return cls(
            action=str(request.get("action", "")),
            user=str(request.get("user", "")),
            ids=tuple(str(i) for i in request.get("ids", ())),
            group=str(request.get("group", "")),
            reason=str(request.get("reason", "")),
            ts=float(request.get("ts") or 0.0),
            request_id=str(request.get("request_id", "")),
            signature=str(request.get("signature", "")),
            via=str(request.get("via", "ray")),
            secret=secret,
            session=str(request.get("session", "")),
            console_key=console_key,
        )


@dataclass(frozen=True)
class PlanApproved:
    """Approved proposals to plan and send, on figures fetched for them just now."""

    proposal_ids: tuple[str, ...]
    views: AccountViews = field(default_factory=dict)


@dataclass(frozen=True)
class OrderReports:
    """Reports from the order gateway (PUB/SUB: late, twice, out of order)."""

    reports: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Tick:
    """The clock: verification, open orders, time limits, figures, the emergency policy. `views`
    holds the accounts `ExecutionMachine.tick_accounts(now)` named."""

    views: AccountViews = field(default_factory=dict)


@dataclass(frozen=True)
class OrdersSent:
    """The shell sent these orders (their journal records were committed first): only now may
    the clock ask the gateway about them — a query overtaking its order would be answered
    "unknown" and the order sent twice."""

    order_refs: tuple[str, ...]


@dataclass(frozen=True)
class Replay:
    """A restart: the machine's own journal records, in order, through the same `apply`."""

    records: tuple[dict[str, Any], ...]


# ---- effects ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Journal:
    """Records to journal; `durable`: committed before the effects after it are performed."""

    records: tuple[dict[str, Any], ...]
    durable: bool = False


@dataclass(frozen=True)
class SendOrders:
    """Orders (wire fields only) and commands (cancel, query, trading_state) for the gateway."""

    messages: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Notify:
    """Alerts for the notifier: margin calls, approval stages past their time limit."""

    alerts: tuple[Alert, ...]


@dataclass(frozen=True)
class PlanDue:
    """Proposals approved: fetch their accounts' views and apply `PlanApproved`."""

    proposal_ids: tuple[str, ...]
    account_ids: tuple[str, ...]


@dataclass(frozen=True)
class Closed:
    """A proposal closed: the latencies for the metrics (None: not applicable)."""

    proposal_id: str
    state: str
    proposal_to_fill_ms: float | None = None
    decision_to_close_ms: float | None = None


@dataclass(frozen=True)
class Decided:
    """A proposal's deciding approval or rejection, `waited_s` after it was proposed."""

    proposal_id: str
    waited_s: float


@dataclass(frozen=True)
class Reply:
    """The answer for the caller of this input."""

    payload: dict[str, Any]


Effect = Journal | SendOrders | Notify | PlanDue | Closed | Decided | Reply
Input = (
    ProposalsSubmitted
    | ManualProposal
    | Decision
    | PlanApproved
    | OrderReports
    | OrdersSent
    | Tick
    | Replay
)
