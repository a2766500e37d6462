"""Approval workflow as data: who may decide what, in which stages, how fast, signed by whom.

Pure functions over frozen records, so the Executor, its rebuild from the journal after a restart
and a test compute the same answer from (policy, approval state, request, now). A decision either
advances the state or is refused with an upper-case reason code (NautilusTrader's habit: logs,
tests and the audit trail speak the same words):

    UNKNOWN_USER     the user is not in the configured roster
    WRONG_ROLE       the user holds no role the current stage accepts
    OWN_PROPOSAL     four-eyes: the proposer may not approve their own proposal
    SAME_APPROVER    four-eyes: one person counts once per proposal, across all stages
    NOT_PENDING      the proposal was already decided
    UNKNOWN_PROPOSAL no such proposal (or not unique)
    REPLAYED_REQUEST a request id seen before: the same request is never acted on twice
    STALE_REQUEST    the request is older (or further in the future) than request_max_age_s
    UNSIGNED_REQUEST no signature by the person and no console session vouching for them
    BAD_SIGNATURE    the signature does not match the request under the user's secret (or the
                     console's key)

Stages come from the action kind and its size (the plan's notional, or the margin call amount):
the policy of that kind with the largest `min_size` not above the size wins, so "reduce below
5 M: the risk desk; above: two risk-desk approvers" is two lines of config.

Every decision is authenticated (issue 13 item 5): signed by the person with their secret
(HMAC over `request_digest`), or vouched for by the console, which signs the request and the
session it came from with its per-deployment key (`sign_console`). The one exception is
`demo_open` (the `fengkong demo` flag, refused by `fengkong run`): unsigned decisions are
accepted and, with no roster, any named operator holds every role; four-eyes still applies.
Without the flag and without a roster no one may decide.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_ROLES = ("risk_desk", "business_head", "executive")
SYSTEM_USER = "system"
EMERGENCY_USER = "EMERGENCY_POLICY"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    roles: tuple[str, ...] = ()
    signs: bool = False  # kept for old callers: every person signs outside `demo_open`


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    roles: tuple[str, ...] = ("risk_desk",)
    approvers: int = 1  # distinct people this stage needs (2 = four eyes within the stage)
    time_limit_s: float = 0.0  # 0: no limit; past it the stage is escalated through the notifier


@dataclass(frozen=True, slots=True)
class KindPolicy:
    kind: str
    min_size: float = 0.0
    stages: tuple[Stage, ...] = (Stage("risk desk"),)


@dataclass(frozen=True, slots=True)
class EmergencyPolicy:
    """Act without approval when risk degree stays above a line for a while (off by default)."""

    enabled: bool = False
    kind: str = "liquidate"
    risk_degree_above: float = 1.3
    for_s: float = 300.0


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    users: tuple[User, ...] = ()
    policies: tuple[KindPolicy, ...] = ()
    four_eyes: bool = True
    require_signature: bool = False
    request_max_age_s: float = 300.0
    expire_after_s: float = 0.0  # 0: a pending proposal never expires on its own
    emergency: EmergencyPolicy = EmergencyPolicy()
    demo_open: bool = False  # the demo's flag: unsigned decisions, any name when no roster

    @property
    def open(self) -> bool:
        """The demo's open policy: no roster and the explicit `demo_open` flag."""
        return self.demo_open and not self.users

    def user(self, name: str) -> User | None:
        if self.open:
            return User(name, DEFAULT_ROLES) if name else None
        return next((u for u in self.users if u.name == name), None)

    def stages_for(self, kind: str, size: float) -> tuple[Stage, ...]:
        matching = [p for p in self.policies if p.kind == kind and p.min_size <= size]
        if not matching:
            return (Stage("risk desk"),)
        return max(matching, key=lambda p: p.min_size).stages

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ApprovalPolicy:
        """From the [approval] config section as plain data (infra.config passes asdict)."""
        if not data:
            return cls()
        users = tuple(
            User(u["name"], tuple(u.get("roles", ())), bool(u.get("secret_env")))
            for u in data.get("users", ())
        )
        policies = tuple(
            KindPolicy(
                p["kind"],
                float(p.get("min_size", 0.0)),
                tuple(
                    Stage(
                        s["name"],
                        tuple(s.get("roles", ("risk_desk",))),
                        int(s.get("approvers", 1)),
                        float(s.get("time_limit_s", 0.0)),
                    )
                    for s in p.get("stages", ())
                )
                or (Stage("risk desk"),),
            )
            for p in data.get("policies", ())
        )
        em = data.get("emergency") or {}
        return cls(
            users=users,
            policies=policies,
            four_eyes=bool(data.get("four_eyes", True)),
            require_signature=bool(data.get("require_signature", False)),
            request_max_age_s=float(data.get("request_max_age_s", 300.0)),
            expire_after_s=float(data.get("expire_after_s", 0.0)),
            demo_open=bool(data.get("demo_open", False)),
            emergency=EmergencyPolicy(
                enabled=bool(em.get("enabled", False)),
                kind=str(em.get("kind", "liquidate")),
                risk_degree_above=float(em.get("risk_degree_above", 1.3)),
                for_s=float(em.get("for_s", 300.0)),
            ),
        )


@dataclass(frozen=True, slots=True)
class Approval:
    stage: int
    user: str
    ts: float


@dataclass(frozen=True, slots=True)
class ApprovalState:
    """Where one proposal stands. Immutable: `decide` returns the next state."""

    proposal_id: str
    kind: str
    size: float
    proposer: str
    stages: tuple[Stage, ...]
    created_ts: float
    stage: int = 0
    stage_started_ts: float = 0.0
    approvals: tuple[Approval, ...] = ()
    status: str = "pending"  # pending / approved / rejected
    escalated: tuple[int, ...] = ()  # stages already escalated

    @classmethod
    def new(
        cls, policy: ApprovalPolicy, proposal_id: str, kind: str, size: float,
        proposer: str, now: float,
    ) -> ApprovalState:  # fmt: skip
        stages = policy.stages_for(kind, size)
        return cls(proposal_id, kind, size, proposer, stages, now, stage_started_ts=now)

    @property
    def current(self) -> Stage | None:
        return self.stages[self.stage] if self.stage < len(self.stages) else None

    def approvers_in_stage(self) -> list[str]:
        return [a.user for a in self.approvals if a.stage == self.stage]

    def describe(self) -> str:
        stage = self.current
        if stage is None:
            return self.status
        have = len(self.approvers_in_stage())
        return f"stage {self.stage + 1}/{len(self.stages)} {stage.name}: {have}/{stage.approvers}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a decision did: refused with a reason, or accepted (and maybe completed)."""

    state: ApprovalState
    refused: str = ""  # reason code, "" when accepted
    detail: str = ""
    complete: bool = False  # the last stage is satisfied: execute
    stage_name: str = ""

    @property
    def accepted(self) -> bool:
        return not self.refused


def decide(
    policy: ApprovalPolicy, state: ApprovalState, user: str, decision: str, now: float
) -> Outcome:
    """Apply `decision` ("approve" / "reject") by `user` to `state`."""
    if decision not in ("approve", "reject"):
        return Outcome(state, "MALFORMED", f"decision {decision!r} is not approve or reject")
    person = policy.user(user)
    if person is None:
        return Outcome(state, "UNKNOWN_USER", f"{user!r} is not in the approval roster")
    if state.status != "pending" or state.current is None:
        return Outcome(state, "NOT_PENDING", f"proposal is {state.status}")
    stage = state.current
    if not set(person.roles) & set(stage.roles):
        return Outcome(
            state,
            "WRONG_ROLE",
            f"{user} holds {list(person.roles)}; stage {stage.name!r} needs one of {list(stage.roles)}",
        )
    if decision == "reject":
        # One person with the stage's role can stop an action; stopping is never the risk.
        return Outcome(replace(state, status="rejected"), complete=True, stage_name=stage.name)
    if policy.four_eyes and user == state.proposer:
        return Outcome(state, "OWN_PROPOSAL", f"{user} proposed it; someone else must approve")
    if policy.four_eyes and user in {a.user for a in state.approvals}:
        return Outcome(state, "SAME_APPROVER", f"{user} already approved this proposal")
    approvals = state.approvals + (Approval(state.stage, user, now),)
    after = replace(state, approvals=approvals)
    if len(after.approvers_in_stage()) < stage.approvers:
        return Outcome(after, stage_name=stage.name)
    nxt = state.stage + 1
    if nxt >= len(state.stages):
        return Outcome(
            replace(after, stage=nxt, status="approved"), complete=True, stage_name=stage.name
        )
    return Outcome(replace(after, stage=nxt, stage_started_ts=now), stage_name=stage.name)


def overdue(state: ApprovalState, now: float) -> Stage | None:
    """The current stage, when its time limit has passed and it has not been escalated yet."""
    stage = state.current
    if state.status != "pending" or stage is None or stage.time_limit_s <= 0:
        return None
    if state.stage in state.escalated:
        return None
    return stage if now - state.stage_started_ts >= stage.time_limit_s else None


def expired(policy: ApprovalPolicy, state: ApprovalState, now: float) -> bool:
    return (
        state.status == "pending"
        and policy.expire_after_s > 0
        and now - state.created_ts >= policy.expire_after_s
    )


# ---- signed requests -------------------------------------------------------------------------


def request_digest(
    action: str, user: str, ids: Iterable[str], group: str, reason: str, ts: float, request_id: str
) -> bytes:
    """The canonical text a decision request signs: same bytes from the CLI, HTTP and a test."""
    body = "\n".join([action, user, ",".join(sorted(ids)), group, reason, f"{ts:.3f}", request_id])
    return body.encode()


def sign_request(secret: str, **fields: Any) -> str:
    return hmac.new(secret.encode(), request_digest(**fields), hashlib.sha256).hexdigest()


def sign_console(key: str, session: str, **fields: Any) -> str:
    """The console's voucher: the request and the session (its reference, the digest's head:
    never the cookie or the token) it came from, under the console's per-deployment key."""
    body = request_digest(**fields) + b"\nsession:" + session.encode()
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def check_request(
    policy: ApprovalPolicy,
    user: str,
    secret: str | None,
    signature: str,
    fields: dict[str, Any],
    now: float,
    seen: set[str] | frozenset[str],
    console_key: str | None = None,
    session: str = "",
) -> tuple[str, str]:
    """Authenticate a decision request; returns ("", "") or (reason code, detail).

    `signature` is the person's (under `secret`), or with `session` the console's (under
    `console_key`); unsigned passes only under `demo_open`."""
    request_id = fields.get("request_id") or ""
    if not request_id:
        return "MALFORMED", "a request needs a request_id"
    if request_id in seen:
        return "REPLAYED_REQUEST", f"request {request_id} was already handled"
    person = policy.user(user)
    if person is None and not policy.users:
        return "UNKNOWN_USER", (
            "no approval roster is configured ([[approval.users]]): no one may decide "
            "(only `fengkong demo` runs open)"
        )
    if person is None:
        return "UNKNOWN_USER", f"{user!r} is not in the approval roster"
    age = now - float(fields.get("ts") or 0.0)
    if abs(age) > policy.request_max_age_s:
        return "STALE_REQUEST", f"request is {age:.0f} s old (max {policy.request_max_age_s:.0f})"
    if not signature:
        if policy.demo_open:
            return "", ""
        return "UNSIGNED_REQUEST", (
            f"{user} must sign decisions (their secret from the environment or "
            "approval.secrets_file) or decide in the console"
        )
    if session:
        if not console_key:
            return "BAD_SIGNATURE", "no console key is configured: a console decision is unproven"
        expected = sign_console(console_key, session, **fields)
        if not hmac.compare_digest(expected, signature):
            return "BAD_SIGNATURE", "the console's signature does not match the request"
        return "", ""
    if not secret:
        return "BAD_SIGNATURE", f"no signing secret is configured for {user}"
    expected = sign_request(secret, **fields)
    if not hmac.compare_digest(expected, signature):
        return "BAD_SIGNATURE", "signature does not match the request"
    return "", ""


# ---- emergency policy ------------------------------------------------------------------------


@dataclass
class EmergencyWatch:
    """Per account: since when risk degree has stayed above the emergency line."""

    policy: EmergencyPolicy
    above_since: dict[str, float] = field(default_factory=dict)
    fired: set[str] = field(default_factory=set)

    def observe(self, account_id: str, risk_degree: float, now: float) -> bool:
        """True once, when the account has stayed above the line for `for_s`."""
        if not self.policy.enabled or account_id in self.fired:
            return False
        if not risk_degree > self.policy.risk_degree_above:
            self.above_since.pop(account_id, None)
            return False
        since = self.above_since.setdefault(account_id, now)
        if now - since >= self.policy.for_s:
            self.fired.add(account_id)
            return True
        return False
