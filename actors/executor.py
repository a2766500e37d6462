"""Executor actor: the shell of the pure execution machine (rules/execution/).

It receives a message, fetches the account views the message needs (one Ray call per shard, all
at once), calls `ExecutionMachine.apply(input, now)` under its lock, then performs the effects
in order: journal (durable records committed before anything after them acts — the outbox),
send to the order gateway over the ZeroMQ bridge, ask the notifier, fetch views for approved
plans and apply them, observe metrics. A restart reads its records back and replays them
through the same `apply`. Threaded (max_concurrency) so `proposals` is answered while a batch
approval executes; one clock thread ticks the machine every `tick_s`.

Issue 13 item 5: over Ray only the public methods answer (the shell's guard refuses `_perform`,
`_run`, … and `__ray_call__`), so every effect comes out of the machine's `apply`; a decision
is signed by a person or by the console (`decide` looks up the secret and the console's key);
decision records are sealed with the deployment's key before they are journaled, and a restart
skips a decision record whose seal does not match (`forged_skipped`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS, JournalSender
from actors.execution.metrics import ExecutorMetrics
from actors.execution.settings import ExecutorSettings
from actors.execution.views import ShardViews
from actors.shell import ActorShell
from gateways.orders.bridge import BridgeClient
from infra.approval_keys import seal_key
from rules.approval import SYSTEM_USER, ApprovalPolicy
from rules.execution.machine import ExecutionMachine
from rules.execution.messages import (
    Closed,
    Decided,
    Decision,
    Effect,
    Input,
    Journal,
    ManualProposal,
    Notify,
    OrderReports,
    OrdersSent,
    PlanApproved,
    PlanDue,
    ProposalsSubmitted,
    Replay,
    Reply,
    SendOrders,
    Tick,
)
from rules.execution.seal import seal, unsealed
from rules.execution.state import RESUME_KINDS
from rules.model import ActionProposal

__all__ = ["Executor"]
ACTOR = "Executor"
JOURNAL_TIMEOUT_S = 60.0  # a durable record not committed by then: hold what follows it
RETRY_S = 2.0  # how often held effects ask the journal again
log = logging.getLogger(__name__)


def _matters(e: Effect) -> bool:
    """An effect worth holding (an empty Journal or SendOrders does nothing)."""
    if isinstance(e, Journal):
        return bool(e.records)
    if isinstance(e, SendOrders):
        return bool(e.messages)
    if isinstance(e, Notify):
        return bool(e.alerts)
    return not isinstance(e, Reply)


@ray.remote(**{**ACTOR_OPTIONS, "max_concurrency": 8})
class Executor(ActorShell):
    """`reject` here is the approval message (a proposal refused); the Executor quarantines no
    input, so it does not need the shell's `reject`, which the shell never calls itself."""

    def __init__(self, settings: ExecutorSettings, audit: Any = None, notifier: Any = None) -> None:
        super().__init__(ACTOR)
        self.settings = settings
        self.audit = audit
        self._numbered = JournalSender(ACTOR)  # numbers its records: `audit verify` sees a gap
        self.notifier = notifier
        policy = ApprovalPolicy.from_dict(settings.approval)
        self.machine = ExecutionMachine(policy, settings.execution)
        self.seal_key = settings.seal_key or seal_key(settings.approval) or ""
        if policy.demo_open:
            log.warning(
                "*** approval.demo_open: UNSIGNED DECISIONS ARE ACCEPTED%s (fengkong demo only)",
                ", ANY NAME APPROVES" if policy.open else "",
            )
        self.views = ShardViews(settings.n_shards, settings.name_prefix)
        self.metrics = ExecutorMetrics()
        self.lock = threading.RLock()  # around `apply`: the machine is not thread-safe
        self.decide_lock = threading.Lock()  # one decision request at a time, plan included
        # Effects after a durable record that did not commit, with "already numbered" flags:
        # performed in order once the journal commits (`_drain`), never before.
        self._held: list[tuple[Effect, bool]] = []
        self._held_lock = threading.Lock()
        self._drainer = threading.Lock()
        self._retry_at = 0.0
        self.held_since = 0.0
        # The journal first, through the same `apply` as live; then the reports: none is applied
        # to a half-built state. Every open order is asked about at once (the gateway answers a
        # status query with its latest report), so a report missed while down is not lost.
        resumed = self._apply(Replay(tuple(self._own_records())))
        self.bridge = BridgeClient(
            settings.order_endpoint, settings.reports_endpoint, self.on_reports
        )
        threading.Thread(target=self._perform, args=(resumed,), daemon=True).start()
        # The clock: a failed round is counted (`watch_errors`, `last_error`), the next one runs.
        self.every(settings.execution.tick_s, self._watch_step, "watch")

    # ---- messages ------------------------------------------------------------------------------

    def on_proposals(self, proposals: list[ActionProposal], proposer: str = SYSTEM_USER) -> int:
        """Journal new proposals (with their preview plan and approval stages) before anything."""
        with self.lock:
            fresh = self.machine.new_accounts(proposals)
        views = self.views.fetch(fresh) if fresh else {}
        return self._run(ProposalsSubmitted(tuple(proposals), proposer, views)).get("accepted", 0)

    def propose(
        self, account_id: str, kind: str, user: str, target: float = 0.8, reason: str = ""
    ) -> dict[str, Any]:
        """A person proposes an action by hand; four-eyes: someone else must approve it."""
        views = self.views.fetch([account_id])
        return self._run(ManualProposal(account_id, kind, user, target, reason, views))

    def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        """One decision request: {action: approve|reject, ids, group, user, reason, request_id,
        ts, signature, via}. Every refusal is journaled with its reason code."""
        secret = self.settings.secret(str(request.get("user", "")))
        console = self.settings.console_key() if request.get("session") else None
        with self.decide_lock:
            reply = self._run(Decision.from_request(request, secret, console))
        planned = reply.pop("planned", {})
        for r in reply.get("results", ()):
            r.update(planned.get(r["proposal_id"], {}))
        return reply

    def approve(self, proposal_ids: list[str], user: str, group: str = "") -> list[dict[str, Any]]:
        """Approve proposals (one, or a batch after a market-wide shock) and execute them: an
        unsigned request, so refused (UNSIGNED_REQUEST) outside `demo_open`."""
        return self.simple_request("approve", proposal_ids, user, group=group)["results"]

    def approve_all_pending(self, user: str) -> list[dict[str, Any]]:
        with self.lock:
            ids = self.machine.pending_ids()
        return self.approve(ids, user) if ids else []

    def reject(self, proposal_id: str, user: str, reason: str = "") -> dict[str, Any]:
        return self.simple_request("reject", [proposal_id], user, reason)["results"][0]

    def on_reports(self, reports: list[dict[str, Any]]) -> None:
        """Gateway reports (the bridge's thread)."""
        self._run(OrderReports(tuple(reports)))

    # ---- reads ---------------------------------------------------------------------------------

    def pending(self) -> list[dict[str, Any]]:
        """Pending proposals with their batch group, approval stage, size and preview plan."""
        return self.pending_records()

    def pending_records(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.machine.pending_records()

    def groups(self) -> list[dict[str, Any]]:
        return self.group_records()

    def group_records(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.machine.group_records()

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        with self.lock:
            return self.machine.proposal_record(proposal_id)

    def figures(self) -> dict[str, Any]:
        with self.lock:
            out = self.machine.stats()
        out.update(self.metrics.stats(), view_errors=self.views.errors)
        out.setdefault("watch_errors", self.counts["watch_errors"])
        held_since = self.held_since
        out.update(journal_held=len(self._held),
                   journal_held_s=round(time.time() - held_since, 1) if held_since else 0.0)  # fmt: skip
        return out

    def latencies_ms(self) -> dict[str, list[float]]:
        return {
            "proposal_to_fill": self.metrics.proposal_to_fill.values().tolist(),
            "decision_to_close": self.metrics.decision_to_close.values().tolist(),
        }

    # ---- the shell -----------------------------------------------------------------------------

    def simple_request(
        self, action: str, ids: list[str], user: str, reason: str = "", group: str = ""
    ) -> dict[str, Any]:
        """An unsigned decision from inside the cluster (the demo, tests): accepted only under
        `demo_open`; everyone else signs (`decide`)."""
        return self.decide(
            {"action": action, "ids": ids, "group": group, "user": user, "reason": reason,
             "request_id": uuid.uuid4().hex, "ts": time.time(), "via": "ray"}
        )  # fmt: skip

    def _apply(self, msg: Input, now: float | None = None) -> list[Effect]:
        with self.lock:
            return self.machine.apply(msg, time.time() if now is None else now)

    def _run(self, msg: Input, now: float | None = None) -> dict[str, Any]:
        return self._perform(self._apply(msg, now))

    def _perform(self, effects: list[Effect]) -> dict[str, Any]:
        """The effects in order; returns what the Reply effects said (and the plans' replies).
        A durable Journal that does not commit holds itself and every effect after it (no
        order without its record); so do the effects of later calls while any are held."""
        reply: dict[str, Any] = {}
        if self._held and not self._drain():
            return self._hold(effects, reply)
        for i, e in enumerate(effects):
            if isinstance(e, Journal):
                if e.records and self.audit is not None and not self._journal(e):
                    return self._hold(effects[i:], reply, sent=True)
                continue
            self._effect(e, reply)
        self._gauge()
        return reply

    def _effect(self, e: Effect, reply: dict[str, Any]) -> None:
        """One effect other than Journal."""
        if isinstance(e, SendOrders) and e.messages:
            self.bridge.send(list(e.messages))
            refs = tuple(m["order_ref"] for m in e.messages if "type" not in m)
            if refs:
                self._apply(OrdersSent(refs))
        elif isinstance(e, Notify) and e.alerts and self.notifier is not None:
            self.notifier.notify.remote(list(e.alerts))
        elif isinstance(e, PlanDue):
            planned = self._run(PlanApproved(e.proposal_ids, self.views.fetch(e.account_ids)))
            reply["planned"] = {**reply.get("planned", {}), **planned.get("results", {})}
        elif isinstance(e, Reply):
            reply.update(e.payload)
        if isinstance(e, SendOrders | Decided | Closed):
            with self.lock:
                rate = self.machine.closed_loop_rate()
            self.metrics.observe(e, rate)

    def _gauge(self) -> None:
        from infra.metrics import set_gauge  # the dashboard's pending approvals (deploy/grafana)

        with self.lock:
            pending = len(self.machine.pending_ids())
        set_gauge("pending_approvals", "proposals waiting", pending, {"actor": "Executor"})

    # ---- the outbox while the journal does not commit (issue 14 item 5) ------------------------

    def _journal(self, e: Journal, stamped: bool = False) -> bool:
        """Send one Journal effect; a durable one (and any held one) must commit: False when
        it did not (the AuditLog refused, timed out, or is gone with its node)."""
        records = list(e.records)
        if stamped:  # the same numbered records again: a copy that did land is dropped
            sent = self.audit.durable.remote(records)
        else:
            seal(records, self.seal_key)  # decision records: only this actor writes them
            sent = self._numbered.send(self.audit, records, durable=e.durable or self.holding)
        if not (e.durable or self.holding):
            return True
        try:
            ray.get(sent, timeout=JOURNAL_TIMEOUT_S)
            return True
        except Exception as exc:
            self.failed("journal", exc)
            self._retry_at = time.monotonic() + RETRY_S
            return False

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def _hold(self, rest: list[Effect], reply: dict[str, Any], sent: bool = False) -> dict:
        """Keep `rest` (the first already numbered when `sent`) for when the journal commits;
        the caller's Reply still answers, with JOURNAL_UNAVAILABLE."""
        kept = []
        for j, e in enumerate(rest):
            if isinstance(e, Reply):
                reply.update(e.payload)
            elif _matters(e):
                kept.append((e, sent and j == 0))
        with self._held_lock:
            if not self._held:
                self.held_since = time.time()
            self._held.extend(kept)
        self.counts["effects_held"] += len(kept)
        reply["journal"] = "unavailable"
        reply.setdefault("code", "JOURNAL_UNAVAILABLE")
        return reply

    def _drain(self) -> bool:
        """Perform the held effects in order, each Journal committed first; True when none is
        left. One thread drains at a time (another finds it busy and holds behind it); a
        failed commit waits RETRY_S before the next try."""
        if time.monotonic() < self._retry_at or not self._drainer.acquire(blocking=False):
            return False
        try:
            while True:
                with self._held_lock:
                    if not self._held:
                        self.held_since = 0.0
                        return True
                    e, stamped = self._held[0]
                if isinstance(e, Journal):
                    if not self._journal(e, stamped):
                        with self._held_lock:
                            self._held[0] = (e, True)
                        return False
                    with self._held_lock:
                        self._held.pop(0)
                    continue
                with self._held_lock:
                    self._held.pop(0)
                self._effect(e, {})  # a plan's own effects queue behind what is held
        finally:
            self._drainer.release()

    def _own_records(self) -> list[dict[str, Any]]:
        if self.audit is None:
            return []
        since = time.time() - self.settings.execution.resume_window_s
        query = self.audit.query.remote(kinds=list(RESUME_KINDS), actor=ACTOR, since=since)
        records = ray.get(query, timeout=120)
        kept = [r for r in records if unsealed(r, self.seal_key) is None]
        if len(kept) < len(records):  # forged (or sealed under another deployment's key)
            self.counts["forged_skipped"] += len(records) - len(kept)
            self.last_error = f"resume: {len(records) - len(kept)} decision records unsealed"
        return kept

    def _watch_step(self) -> None:
        if self._held:  # the journal is back (or not yet): what was held goes first
            self._drain()
        now = time.time()
        with self.lock:
            accounts = self.machine.tick_accounts(now)
        views = self.views.fetch(accounts) if accounts else {}
        self._run(Tick(views), now)
