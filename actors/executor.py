"""Executor actor: proposals wait for a person; approved ones become orders; fills close the loop.

A proposal is journaled before anything is done with it; a decision names the person; the plan
(rules.actions) says why each leg; an order's ref is derived from (proposal, leg), so sending it
again is refused by the gateway as a duplicate rather than executed twice. Order reports come back
over ZeroMQ; when a proposal's orders are done, the account is re-read from its shard and the
action closes only if the target is met.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import ray
import zmq

from actors.common import ACTOR_OPTIONS, actor_name, entry
from infra import metrics
from infra.codec import CodecError, decode_records, encode_records
from infra.stats import LatencyRing
from rules.actions import plan_action
from rules.model import ActionProposal, ProposalState, stable_id
from rules.sharding import shard_of

SYSTEM_PROPOSER = "system"
TERMINAL_ORDER = ("filled", "rejected", "duplicate", "cancelled")


@ray.remote(**ACTOR_OPTIONS)
class Executor:
    def __init__(
        self,
        order_endpoint: str,
        reports_endpoint: str,
        n_shards: int,
        name_prefix: str = "",
        audit: Any = None,
        verify_timeout_s: float = 5.0,
    ) -> None:
        self.n_shards = n_shards
        self.name_prefix = name_prefix
        self.audit = audit
        self.verify_timeout_s = verify_timeout_s
        self.proposals: dict[str, ActionProposal] = {}
        self.plans: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.orders_of: dict[str, list[str]] = collections.defaultdict(list)
        self.counts: collections.Counter = collections.Counter()
        self.proposal_to_fill = LatencyRing()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ctx = zmq.Context.instance()
        self._push = self._ctx.socket(zmq.PUSH)
        self._push.setsockopt(zmq.LINGER, 1000)
        self._push.connect(order_endpoint)
        self._shards: dict[int, Any] = {}
        self._m_orders = metrics.counter("orders_total", "orders sent", tag_keys=("actor",))
        threading.Thread(target=self._reports_loop, args=(reports_endpoint,), daemon=True).start()

    # ---- proposals and decisions ----------------------------------------------------------

    def on_proposals(self, proposals: list[ActionProposal]) -> int:
        records = []
        with self._lock:
            for p in proposals:
                if p.proposal_id in self.proposals:
                    self.counts["duplicate_proposals"] += 1
                    continue
                self.proposals[p.proposal_id] = p
                self.counts["proposals"] += 1
                records.append(
                    entry(
                        "proposal",
                        "Executor",
                        p.account_id,
                        p.proposal_id,
                        p.to_record(),
                        proposed_by=SYSTEM_PROPOSER,
                    )
                )
        self._journal(records)
        return len(records)

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                p.to_record() for p in self.proposals.values() if p.state is ProposalState.PENDING
            ]

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        with self._lock:
            p = self._find(proposal_id)
            return {
                **p.to_record(),
                "plan": self.plans.get(p.proposal_id),
                "orders": [self.orders[r] for r in self.orders_of.get(p.proposal_id, [])],
            }

    def _find(self, proposal_id: str) -> ActionProposal:
        if proposal_id in self.proposals:
            return self.proposals[proposal_id]
        matches = [p for pid, p in self.proposals.items() if pid.startswith(proposal_id)]
        if len(matches) != 1:
            raise KeyError(f"no unique proposal {proposal_id!r} ({len(matches)} match)")
        return matches[0]

    def reject(self, proposal_id: str, user: str, reason: str = "") -> dict[str, Any]:
        with self._lock:
            p = self._find(proposal_id)
            refusal = self._refusal(p, user)
            if refusal:
                return refusal
            p.state, p.decided_by, p.decided_ts = ProposalState.REJECTED, user, time.time()
            self.counts["rejected"] += 1
        self._journal(
            [
                {
                    "kind": "decision",
                    "actor": "Executor",
                    "key": p.account_id,
                    "ref": p.proposal_id,
                    "decision": "reject",
                    "user": user,
                    "reason": reason,
                }
            ]
        )
        return {"proposal_id": p.proposal_id, "state": p.state.value}

    def _refusal(self, p: ActionProposal, user: str) -> dict[str, Any] | None:
        reason = ""
        if not user:
            reason = "UNKNOWN_USER"
        elif p.state is not ProposalState.PENDING:
            reason = f"NOT_PENDING: proposal is {p.state.value}"
        if not reason:
            return None
        self.counts["refused"] += 1
        self._journal(
            [
                {
                    "kind": "refusal",
                    "actor": "Executor",
                    "key": p.account_id,
                    "ref": p.proposal_id,
                    "user": user,
                    "reason": reason,
                }
            ]
        )
        return {"proposal_id": p.proposal_id, "state": p.state.value, "refused": reason}

    def approve(self, proposal_ids: list[str], user: str) -> list[dict[str, Any]]:
        """Approve proposals (one, or a batch after a market-wide shock) and execute them."""
        return [self._approve_one(pid, user) for pid in proposal_ids]

    def approve_all_pending(self, user: str) -> list[dict[str, Any]]:
        with self._lock:
            ids = [
                p.proposal_id for p in self.proposals.values() if p.state is ProposalState.PENDING
            ]
        return self.approve(ids, user)

    def _approve_one(self, proposal_id: str, user: str) -> dict[str, Any]:
        with self._lock:
            try:
                p = self._find(proposal_id)
            except KeyError as exc:
                return {"proposal_id": proposal_id, "refused": f"UNKNOWN_PROPOSAL: {exc}"}
            refusal = self._refusal(p, user)
            if refusal:
                return refusal
            p.state, p.decided_by, p.decided_ts = ProposalState.APPROVED, user, time.time()
            self.counts["approved"] += 1
        self._journal(
            [
                {
                    "kind": "decision",
                    "actor": "Executor",
                    "key": p.account_id,
                    "ref": p.proposal_id,
                    "decision": "approve",
                    "user": user,
                }
            ]
        )
        return self._execute(p)

    # ---- execution ------------------------------------------------------------------------

    def _shard(self, account_id: str) -> Any:
        k = shard_of(account_id, self.n_shards)
        if k not in self._shards:
            self._shards[k] = ray.get_actor(actor_name(self.name_prefix, "AccountShard", str(k)))
        return self._shards[k]

    def _execute(self, p: ActionProposal) -> dict[str, Any]:
        view = ray.get(self._shard(p.account_id).account.remote(p.account_id))
        plan = plan_action(view, p.kind, p.target_risk_degree)
        record = plan.to_record()
        orders = []
        with self._lock:
            self.plans[p.proposal_id] = record
            p.state = ProposalState.EXECUTING
            for i, leg in enumerate(plan.legs):
                ref = stable_id("order", p.proposal_id, i, length=12)
                order = {
                    "order_ref": ref,
                    "proposal_id": p.proposal_id,
                    "account_id": p.account_id,
                    "instrument": leg.instrument,
                    "direction": leg.direction,
                    "offset": leg.offset,
                    "volume": leg.volume,
                    "limit_price": leg.limit_price,
                    "created_ts": time.time(),
                    "status": "submitted",
                    "filled": 0.0,
                    "reason": leg.reason,
                }
                self.orders[ref] = order
                self.orders_of[p.proposal_id].append(ref)
                orders.append(order)
        self._journal(
            [entry("plan", "Executor", p.account_id, p.proposal_id, record)]
            + [
                {
                    "kind": "order",
                    "actor": "Executor",
                    "key": p.account_id,
                    "ref": o["order_ref"],
                    **o,
                }
                for o in orders
            ]
        )
        if orders:
            wire = [
                {
                    k: o[k]
                    for k in (
                        "order_ref",
                        "proposal_id",
                        "account_id",
                        "instrument",
                        "direction",
                        "offset",
                        "volume",
                        "limit_price",
                        "created_ts",
                    )
                }
                for o in orders
            ]
            with self._lock:
                self._push.send(encode_records("orders", wire))
            self.counts["orders"] += len(orders)
            self._m_orders.inc(len(orders), tags={"actor": "Executor"})
        else:
            self._close(p, view)
        return {
            "proposal_id": p.proposal_id,
            "state": p.state.value,
            "orders": len(orders),
            "explanation": plan.explanation,
            "skipped": plan.skipped,
        }

    def _reports_loop(self, endpoint: str) -> None:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"R")
        sock.connect(endpoint)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                _topic, payload = sock.recv_multipart()
                _kind, reports = decode_records(payload, "order_reports")
            except (ValueError, CodecError):
                self.counts["bad_reports"] += 1
                continue
            for report in reports:
                self._on_report(report)

    def _on_report(self, report: dict[str, Any]) -> None:
        ref = report.get("order_ref")
        with self._lock:
            order = self.orders.get(ref)
            if order is None:
                return  # another executor's order, or one from before a restart
            order["status"] = report.get("status", order["status"])
            order["filled"] = float(report.get("filled", order["filled"]))
            order["fill_price"] = report.get("price")
            proposal = self.proposals[order["proposal_id"]]
            done = all(
                self.orders[r]["status"] in TERMINAL_ORDER
                for r in self.orders_of[proposal.proposal_id]
            )
        self._journal(
            [
                {
                    "kind": "order_report",
                    "actor": "Executor",
                    "key": order["account_id"],
                    "ref": ref,
                    **report,
                }
            ]
        )
        if done and proposal.state is ProposalState.EXECUTING:
            threading.Thread(target=self._verify, args=(proposal,), daemon=True).start()

    def _verify(self, p: ActionProposal) -> None:
        """Re-read the account until the fills show and the target is met, or time runs out."""
        deadline = time.time() + self.verify_timeout_s
        expected = sum(self.orders[r]["filled"] for r in self.orders_of[p.proposal_id])
        view: dict[str, Any] = {}
        while time.time() < deadline:
            view = ray.get(self._shard(p.account_id).account.remote(p.account_id))
            if view["risk_degree"] <= p.target_risk_degree + 1e-9:
                break
            time.sleep(0.1)
        self._close(p, view, expected)

    def _close(self, p: ActionProposal, view: dict[str, Any], filled: float = 0.0) -> None:
        met = bool(view) and view["risk_degree"] <= p.target_risk_degree + 1e-9
        with self._lock:
            if p.kind in ("reduce", "liquidate"):
                p.state = ProposalState.DONE if met else ProposalState.FAILED
            else:
                p.state = ProposalState.DONE
            reason = (
                ""
                if p.state is ProposalState.DONE
                else (
                    f"TARGET_NOT_MET: risk degree {view.get('risk_degree', float('nan')):.2%} "
                    f"> target {p.target_risk_degree:.0%}"
                )
            )
            self.counts[p.state.value] += 1
            if p.decided_ts:
                self.proposal_to_fill.add((time.time() - p.decided_ts) * 1000)
        self._journal(
            [
                {
                    "kind": "proposal_closed",
                    "actor": "Executor",
                    "key": p.account_id,
                    "ref": p.proposal_id,
                    "state": p.state.value,
                    "reason": reason,
                    "filled": filled,
                    "risk_degree_after": view.get("risk_degree"),
                    "equity_after": view.get("equity"),
                    "margin_after": view.get("margin"),
                }
            ]
        )

    def _journal(self, records: list[dict[str, Any]]) -> None:
        if self.audit is not None and records:
            self.audit.append.remote(records)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            states = collections.Counter(p.state.value for p in self.proposals.values())
            return {
                **dict(self.counts),
                "states": dict(states),
                "decision_to_close_ms": self.proposal_to_fill.percentiles((50, 99)),
            }
