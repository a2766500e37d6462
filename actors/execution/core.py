"""ExecutorCore: proposals in, decisions by authenticated people, approved plans out as orders.

Outbox discipline: a proposal, a decision, a plan and its orders are committed to the journal
(`AuditLog.durable`) before anything acts on them; order reports and figures go fire-and-forget
(the gateway still knows the truth and answers a status query). A restarted Executor reads its
records back (`ExecState.apply`), asks the gateway about every order still open, and carries on:
an order is never sent twice under two refs, and a resend under the same ref is refused by the
gateway as a duplicate.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import ray

from actors.common import actor_name
from actors.execution.decisions import DecisionMixin
from actors.execution.run import ExecutionMixin
from actors.execution.state import CLOSED, RESUME_KINDS, ExecState
from actors.execution.watch import WatchMixin
from gateways.orders.bridge import BridgeClient
from infra import metrics
from infra.config import Config
from infra.stats import LatencyRing
from rules.actions import plan_action
from rules.approval import SYSTEM_USER, ApprovalPolicy, ApprovalState, EmergencyWatch
from rules.model import ActionProposal, ProposalState, stable_id
from rules.sharding import shard_of

log = logging.getLogger(__name__)
ACTOR = "Executor"


@dataclass(frozen=True)
class Settings:
    reprice_after_s: float = 5.0
    max_reprices: int = 3
    verify_timeout_s: float = 10.0
    query_after_s: float = 2.0
    mark_interval_s: float = 5.0
    margin_call_deadline_s: float = 3600.0
    resume_window_s: float = 3 * 86_400.0
    tick_s: float = 0.1


def executor_options(cfg: Config) -> dict[str, Any]:
    """The Executor's keyword arguments from the config (the supervisor passes them on)."""
    return {
        "approval": {
            **asdict(cfg.approval),
            "http_token_env": cfg.notifier.operator.token_env,
        },
        "settings": {
            k: getattr(cfg.orders, k)
            for k in (
                "reprice_after_s",
                "max_reprices",
                "verify_timeout_s",
                "query_after_s",
                "mark_interval_s",
            )
        },
    }


class ExecutorCore(DecisionMixin, ExecutionMixin, WatchMixin):
    def __init__(
        self,
        order_endpoint: str,
        reports_endpoint: str,
        n_shards: int,
        name_prefix: str = "",
        audit: Any = None,
        verify_timeout_s: float | None = None,
        notifier: Any = None,
        approval: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.n_shards = n_shards
        self.name_prefix = name_prefix
        self.audit = audit
        self.notifier = notifier
        extra = {"verify_timeout_s": verify_timeout_s} if verify_timeout_s is not None else {}
        self.s = Settings(**{**(settings or {}), **extra})
        self.approval_cfg = dict(approval or {})
        self.policy = ApprovalPolicy.from_dict(self.approval_cfg)
        self.group_gap_s = float(self.approval_cfg.get("group_gap_s", 30.0))
        self.state = ExecState()
        self.lock = threading.RLock()
        self.decide_lock = threading.Lock()
        self._stop = threading.Event()
        self.counts: collections.Counter = collections.Counter()
        self.proposal_to_fill = LatencyRing()
        self.decision_to_close = LatencyRing()
        self.emergency = EmergencyWatch(self.policy.emergency)
        self._shards: dict[int, Any] = {}
        self._verifying: dict[str, float] = {}  # proposal -> verification deadline
        self._reprice: set[str] = set()  # cancelled for re-pricing, replacement not sent yet
        self._last_mark: dict[str, float] = {}  # account -> when its figures were journaled
        self._last_check: dict[str, float] = {}  # margin call / freeze -> last check or resend
        self._metrics()
        self._rebuild()
        self.bridge = BridgeClient(order_endpoint, reports_endpoint, self._on_reports)
        self._resume()
        self.http = self._start_http()
        threading.Thread(target=self._watch_loop, name="executor-watch", daemon=True).start()

    # ---- plumbing ------------------------------------------------------------------------------

    def _metrics(self) -> None:
        self._m_orders = metrics.counter("orders_total", "orders sent", tag_keys=("actor",))
        self._m_closed = metrics.counter(
            "proposals_closed_total", "proposals closed, by state", tag_keys=("actor", "state")
        )
        self._m_decision = metrics.histogram(
            "proposal_to_decision_s",
            "proposal created to its deciding approval or rejection",
            [1, 5, 10, 30, 60, 180, 300, 600, 1800, 3600],
        )
        self._m_exec = metrics.histogram(
            "decision_to_close_ms",
            "approval to the action verified (or failed)",
            [10, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000],
        )
        self._m_rate = metrics.gauge("closed_loop_rate", "closed proposals over all proposals")

    def _rec(self, kind: str, key: str, ref: str, **payload: Any) -> dict[str, Any]:
        return {**payload, "kind": kind, "actor": ACTOR, "key": key, "ref": ref, "ts": time.time()}

    def _durable(self, records: list[dict[str, Any]]) -> None:
        """Committed to the journal file before the caller acts on them (the outbox)."""
        if self.audit is not None and records:
            ray.get(self.audit.durable.remote(records), timeout=60)

    def _append(self, records: list[dict[str, Any]]) -> None:
        if self.audit is not None and records:
            self.audit.append.remote(records)

    def _apply(self, records: list[dict[str, Any]]) -> None:
        with self.lock:
            for r in records:
                self.state.apply(r)

    def _shard(self, account_id: str) -> Any:
        k = shard_of(account_id, self.n_shards)
        if k not in self._shards:
            self._shards[k] = ray.get_actor(actor_name(self.name_prefix, "AccountShard", str(k)))
        return self._shards[k]

    def _views(self, account_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Account views from their shards: one call per shard, all in flight at once."""
        by_shard: dict[int, list[str]] = {}
        for a in dict.fromkeys(account_ids):
            by_shard.setdefault(shard_of(a, self.n_shards), []).append(a)
        refs = {k: self._shard(ids[0]).accounts.remote(ids) for k, ids in by_shard.items()}
        out: dict[str, dict[str, Any]] = {}
        for k, ref in refs.items():
            try:
                out.update(ray.get(ref, timeout=30))
            except Exception as exc:  # a shard restarting: no views from it this time
                self.counts["view_errors"] += len(by_shard[k])
                log.debug("no views from shard %s: %s", k, exc)
        return out

    # ---- restart -------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        if self.audit is None:
            return
        since = time.time() - self.s.resume_window_s
        records = ray.get(
            self.audit.query.remote(kinds=list(RESUME_KINDS), actor=ACTOR, since=since),
            timeout=120,
        )
        self._apply(records)
        self.counts["rebuilt_records"] = len(records)

    def _resume(self) -> None:
        """After a rebuild: open orders are asked about, approved plans carried out, done ones
        verified. The watch loop sends the status queries (and repeats them until answered)."""
        approved, verify = [], []
        with self.lock:
            for p in self.state.by_state(ProposalState.APPROVED, ProposalState.EXECUTING):
                if p.proposal_id not in self.state.plans:
                    approved.append(p.proposal_id)
                elif self.state.orders_done(p.proposal_id):
                    verify.append(p.proposal_id)
            for o in self.state.orders.values():
                o["report_ts"] = 0.0  # ask at once
                if o["status"] == "cancelled" and o.get("cancel_reason") == "REPRICE":
                    self._reprice.add(o["order_ref"])
            self.counts["resumed_orders"] = sum(
                1 for o in self.state.orders.values() if o["status"] not in ("filled",)
            )
        for pid in verify:
            self._verifying[pid] = time.time() + self.s.verify_timeout_s
        if approved:
            threading.Thread(target=self._execute, args=(approved,), daemon=True).start()

    # ---- proposals -----------------------------------------------------------------------------

    def on_proposals(self, proposals: list[ActionProposal], proposer: str = SYSTEM_USER) -> int:
        """Journal new proposals (with their preview plan and approval stages) before anything."""
        with self.lock:
            fresh = [p for p in proposals if p.proposal_id not in self.state.proposals]
            self.counts["duplicate_proposals"] += len(proposals) - len(fresh)
        if not fresh:
            return 0
        views = self._views([p.account_id for p in fresh])
        records = []
        with self.lock:
            for p in fresh:
                view = views.get(p.account_id)
                preview = (
                    plan_action(view, p.kind, p.target_risk_degree, self.s.margin_call_deadline_s)
                    if view
                    else None
                )
                size = preview.notional if preview else 0.0
                st = ApprovalState.new(
                    self.policy, p.proposal_id, p.kind, size, proposer, p.created_ts
                )
                gid = self.state.group_for(
                    p.kind, p.target_risk_degree, p.created_ts, self.group_gap_s, p.proposal_id
                )
                rec = self._rec(
                    "proposal",
                    p.account_id,
                    p.proposal_id,
                    **{k: v for k, v in p.to_record().items() if k != "kind"},
                    proposal_kind=p.kind,
                    proposed_by=proposer,
                    group_id=gid,
                    size=size,
                    stages=[asdict(s) for s in st.stages],
                    policy="open" if self.policy.open else "roster",
                    preview={
                        "legs": len(preview.legs),
                        "notional": preview.notional,
                        "explanation": preview.explanation,
                        "skipped": preview.skipped,
                        "projected_risk_degree": preview.projected_risk_degree,
                    }
                    if preview
                    else {"explanation": "NO_VIEW: the account was not found on its shard"},
                )
                self.state.apply(rec)  # groups must see each other within one batch
                records.append(rec)
                if view:
                    records.append(self._mark_record(p.proposal_id, view, "proposal"))
            self.counts["proposals"] += len(fresh)
        self._durable(records)
        return len(fresh)

    def propose(
        self, account_id: str, kind: str, user: str, target: float = 0.8, reason: str = ""
    ) -> dict[str, Any]:
        """A person proposes an action by hand; four-eyes: someone else must approve it."""
        if self.policy.user(user) is None:
            rec = self._rec(
                "refusal", account_id, "", user=user, decision="propose", via="propose",
                code="UNKNOWN_USER", reason=f"UNKNOWN_USER: {user!r} is not in the roster",
            )  # fmt: skip
            self._durable([rec])
            return {"refused": rec["reason"]}
        now = time.time()
        pid = stable_id("proposal", "manual", account_id, kind, user, now)
        p = ActionProposal(pid, "", account_id, kind, target, now, reason=reason or "by hand")
        self.on_proposals([p], proposer=user)
        return {"proposal_id": pid, "state": "pending", "proposed_by": user}

    # ---- reads ---------------------------------------------------------------------------------

    def pending_records(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for p in self.state.by_state(ProposalState.PENDING):
                rec = p.to_record()
                st = self.state.approval[p.proposal_id]
                rec.update(
                    group_id=self.state.group_of.get(p.proposal_id, ""),
                    stage=st.describe(),
                    size=st.size,
                    proposed_by=self.state.proposer.get(p.proposal_id, ""),
                    preview=self.state.preview.get(p.proposal_id, {}),
                )
                out.append(rec)
            return out

    def group_records(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for gid, pids in self.state.groups.items():
                states = collections.Counter(self.state.proposals[p].state.value for p in pids)
                first = self.state.proposals[pids[0]]
                out.append(
                    {"group_id": gid, "kind": first.kind, "proposals": len(pids),
                     "states": dict(states), "first_ts": first.created_ts}
                )  # fmt: skip
            return out

    def closed_loop_rate(self) -> float:
        with self.lock:
            total = len(self.state.proposals)
            closed = sum(1 for p in self.state.proposals.values() if p.state in CLOSED)
        return closed / total if total else 1.0
