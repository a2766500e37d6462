"""A pure world for the execution machine's unit tests: accounts as plain views, a journal as a
list, a gateway that answers like the simulated one — no Ray, no sockets, a clock we move.

`World.run(input)` plays the actor shell's part: it applies the input, keeps the journal records,
answers `PlanDue` with the accounts' views and `SendOrders` with `OrdersSent`, and returns the
effects and the caller's reply.

Every decision is signed (issue 13 item 5): each person of the roster has a secret in
`World.secrets` and `decide` signs with it, as the CLI does; `unsigned=True` sends none. A world
without a roster runs the demo's open policy (`demo_open`), the only place no one signs.
"""

from __future__ import annotations

from typing import Any

from rules.approval import ApprovalPolicy, sign_request
from rules.execution.machine import ExecutionMachine
from rules.execution.messages import (
    Decision,
    ExecutionSettings,
    Journal,
    OrderReports,
    OrdersSent,
    PlanApproved,
    PlanDue,
    Reply,
    SendOrders,
    Tick,
)
from rules.execution.state import RESUME_KINDS

RB = "rb2601"


def position(volume: float, last: float = 3000.0, direction: str = "long") -> dict[str, Any]:
    return {
        "instrument": RB, "direction": direction, "volume": volume, "today_volume": 0.0,
        "cost_price": last, "last": last, "multiplier": 10.0, "margin_rate": 0.10,
        "exchange": "SHFE", "tick_size": 1.0, "lower_limit": float("nan"),
        "upper_limit": float("nan"),
    }  # fmt: skip


def view(account: str, lots: float, equity: float, last: float = 3000.0) -> dict[str, Any]:
    """rb at 3,000 × 10 × 10 %: 3,000 margin a lot."""
    pos = [position(lots, last)] if lots else []
    margin = sum(p["last"] * p["volume"] * p["multiplier"] * p["margin_rate"] for p in pos)
    return {
        "account_id": account, "equity": equity, "margin": margin,
        "risk_degree": margin / equity, "available": equity - margin, "positions": pos,
    }  # fmt: skip


class World:
    def __init__(
        self,
        policy: dict[str, Any] | None = None,
        settings: ExecutionSettings | None = None,
        now: float = 1_000.0,
    ) -> None:
        policy = dict(policy or {})
        if not policy.get("users"):
            policy.setdefault("demo_open", True)
        self.secrets = {u["name"]: f"secret-of-{u['name']}" for u in policy.get("users", ())}
        self.policy = ApprovalPolicy.from_dict(policy)
        self.settings = settings or ExecutionSettings(verify_timeout_s=10.0, query_after_s=1.0)
        self.machine = ExecutionMachine(self.policy, self.settings)
        self.now = now
        self.views: dict[str, dict[str, Any]] = {}
        self.journal: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []  # every message the gateway received, in order
        self.notified: list[Any] = []

    def run(self, msg: Any, now: float | None = None) -> dict[str, Any]:
        now = self.now if now is None else now
        reply: dict[str, Any] = {}
        for e in self.machine.apply(msg, now):
            if isinstance(e, Journal):
                self.journal.extend(e.records)
            elif isinstance(e, SendOrders):
                self.sent.extend(e.messages)
                refs = tuple(m["order_ref"] for m in e.messages if "type" not in m)
                if refs:
                    self.machine.apply(OrdersSent(refs), now)
            elif isinstance(e, PlanDue):
                views = {a: self.views[a] for a in e.account_ids if a in self.views}
                planned = self.run(PlanApproved(e.proposal_ids, views), now)
                reply.setdefault("planned", {}).update(planned.get("results", {}))
            elif isinstance(e, Reply):
                reply.update(e.payload)
            elif hasattr(e, "alerts"):
                self.notified.extend(e.alerts)
        return reply

    def tick(self, now: float | None = None) -> dict[str, Any]:
        now = self.now if now is None else now
        accounts = self.machine.tick_accounts(now)
        return self.run(Tick({a: self.views[a] for a in accounts if a in self.views}), now)

    def decide(self, action: str, ids: list[str], user: str, **kw: Any) -> dict[str, Any]:
        """A decision request signed with the person's secret (`signature=` or `unsigned=True`
        overrides; `secret=` is what the actor would have looked up)."""
        unsigned = kw.pop("unsigned", False)
        secret = kw.pop("secret", self.secrets.get(user))
        request = {"action": action, "ids": ids, "user": user, "ts": self.now,
                   "request_id": kw.pop("request_id", f"r{len(self.journal)}"), **kw}  # fmt: skip
        if "signature" not in request and not unsigned and secret:
            fields = {k: request.get(k, "") for k in ("action", "user", "ids", "group",
                                                      "reason", "ts", "request_id")}  # fmt: skip
            request["signature"] = sign_request(secret, **fields)
        return self.run(Decision.from_request(request, secret))

    def report(self, order_ref: str, status: str, filled: float, **kw: Any) -> dict[str, Any]:
        rec = {"order_ref": order_ref, "status": status, "filled": filled, "ts": self.now, **kw}
        return self.run(OrderReports((rec,)))

    def orders(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if "type" not in m]

    def own_records(self) -> tuple[dict[str, Any], ...]:
        """What a restarted Executor reads back: its own kinds, in journal order."""
        return tuple(r for r in self.journal if r["kind"] in RESUME_KINDS)

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.journal if r["kind"] == kind]


def snapshot(machine: ExecutionMachine) -> dict[str, Any]:
    """The durable state, without the clock's bookkeeping (when a report or query was last seen)."""
    st = machine.state
    volatile = ("report_ts", "query_ts")
    return {
        "proposals": {k: p.to_record() for k, p in st.proposals.items()},
        "approval": dict(st.approval),
        "proposer": dict(st.proposer),
        "group_of": dict(st.group_of),
        "groups": {k: list(v) for k, v in st.groups.items()},
        "preview": dict(st.preview),
        "plans": dict(st.plans),
        "orders": {
            r: {k: v for k, v in o.items() if k not in volatile} for r, o in st.orders.items()
        },
        "orders_of": {k: list(v) for k, v in st.orders_of.items()},
        "requests": set(st.requests),
        "closed": dict(st.closed),
        "deadline": dict(st.deadline),
        "state_acked": set(st.state_acked),
    }
